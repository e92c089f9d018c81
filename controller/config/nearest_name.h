#pragma once
#include <span>
#include <string>
#include <string_view>

namespace clusterctl::config {

// Edit distance between two strings (case-sensitive); swapping two neighbours counts as one edit.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a plausible typo
// (distance at most a third of the word's length, at least 1, or 2 for longer words);
// empty otherwise.
std::string nearest_name(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace clusterctl::config
