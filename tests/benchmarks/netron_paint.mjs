// Time headless Chromium from launch to Netron's graph painted: launch, open URL, wait until
// the graph's SVG nodes are laid out and visible. Prints the seconds as JSON on stdout.
// The browser has Netron's consent cookie, as for a user who has opened Netron before (a
// first visit would wait on a cookie question).
// Usage: node netron_paint.mjs PLAYWRIGHT_CORE_DIR CHROMIUM URL [TIMEOUT_S]
import { createRequire } from "module";
import path from "path";

const [dir, executable, url, timeoutS] = process.argv.slice(2);
const require = createRequire(path.join(dir, "package.json"));
const { chromium } = require("playwright-core");
const timeout = Number(timeoutS || 120) * 1000;

const t0 = performance.now();
const browser = await chromium.launch({ executablePath: executable, headless: true,
                                        args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.addCookies([{ name: "consent", value: String(Date.now()), url }]);
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector("#canvas g.node", { state: "visible", timeout });
  const seconds = (performance.now() - t0) / 1000;
  const nodes = await page.locator("#canvas g.node").count();
  console.log(JSON.stringify({ seconds, nodes }));
} finally {
  await browser.close();
}
