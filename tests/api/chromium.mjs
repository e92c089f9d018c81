// Where the headless browser tests find Chromium: CHROMIUM_PATH, then the usual names on PATH,
// then the macOS applications; null when there is none.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

export function findChromium() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const name of ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"]) {
    try {
      return execFileSync("which", [name], { encoding: "utf8" }).trim();
    } catch { /* next */ }
  }
  for (const app of ["/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"]) {
    if (existsSync(app)) return app;
  }
  return null;
}
