// Where the headless browser tests find Chromium: CHROMIUM_PATH, then the usual names on PATH,
// then the macOS applications; null when there is none.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import puppeteer from "puppeteer-core";
import { skip } from "./server_process.mjs";

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

// The Chromium the browser tests drive: a missing one skips the test, except under CI, where
// deploy/install-deps.sh installs it and its absence is a failure.
export function chromiumOrSkip() {
  const chromium = findChromium();
  if (chromium) return chromium;
  if (process.env.CI === "true" && process.env.CLUSTERCTL_NO_CHROMIUM !== "1") {
    throw new Error("no chromium under CI: deploy/install-deps.sh installs it (CLUSTERCTL_NO_CHROMIUM=1 skips this test)");
  }
  skip("no chromium found (install it with deploy/install-deps.sh, or set CHROMIUM_PATH)");
}

export function launchHeadless(executablePath) {
  const args = ["--headless=new", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"];
  if (process.getuid?.() === 0) args.push("--no-sandbox");  // Chromium refuses to sandbox as root
  return puppeteer.launch({ executablePath, headless: true, args });
}
