"""Check the built documentation in a real browser: headless Chromium driven by selenium.

    python docs/check_site.py docs/_build/html

Serves the build on 127.0.0.1, loads every HTML page (or, with ``--quick``, the home page, the gallery,
the API index and the user guide) and fails if any page has

* a console error (``SEVERE`` in Chromium's log: script errors, resources that failed to load),
* an image that did not load (``naturalWidth == 0`` after loading it eagerly),
* an internal link whose target page, or the anchor in it, does not exist,
* a gallery example without a figure.

It saves screenshots of the home page and of a gallery page into ``<build>/_screenshots`` together with
``site_check.json`` (the counts and every problem found). Needs Debian's ``chromium`` and
``chromium-driver`` (``apt-get install chromium chromium-driver``) and the ``selenium`` package; nothing is
downloaded at run time.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,900"]
SCREENSHOTS = {"home.png": "index.html", "gallery_eight_schools.png": "auto_examples/plot_eight_schools.html"}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (key == "name" and tag == "a"):
                self.ids.add(value)


@functools.cache
def anchors(path: Path) -> frozenset[str]:
    parser = _Anchors()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


def pages_to_check(root: Path, quick: bool) -> list[str]:
    if quick:
        pages = ["index.html", "auto_examples/index.html", "api/index.html", "guide/index.html"]
        pages += sorted(str(p.relative_to(root)) for p in (root / "auto_examples").glob("plot_*.html"))
        pages += sorted(str(p.relative_to(root)) for p in (root / "guide").glob("*.html"))
        return list(dict.fromkeys(pages))
    skip = ("_static/", "_sources/", "_images/", "_downloads/", "_screenshots/")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.html") if not str(p.relative_to(root)).startswith(skip))


def resolve(root: Path, base: str, href: str) -> tuple[Path | None, str]:
    """The file an internal link points to, and its fragment; (None, '') for external links."""
    if not href.startswith(base):
        return None, ""
    url, fragment = urldefrag(href)
    rel = unquote(urlparse(url).path)[len(urlparse(base).path):]
    target = root / rel
    if rel == "" or rel.endswith("/"):
        target = target / "index.html"
    return target, unquote(fragment)


EAGER_IMAGES = """
const done = arguments[arguments.length - 1];
const imgs = Array.from(document.images);
imgs.forEach(i => { i.loading = 'eager'; });
Promise.all(imgs.map(i => i.complete ? Promise.resolve() :
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 5000); })))
  .then(() => done(imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src)));
"""
MATHJAX_IDLE = """
return !window.MathJax || (MathJax.isReady === true && MathJax.Hub && MathJax.Hub.queue.pending === 0
                           && MathJax.Hub.queue.running === 0);
"""


def make_driver(user_data_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    return driver


def check(root: Path, quick: bool = False, shots: Path | None = None) -> dict:
    root = root.resolve()
    shots = shots or root / "_screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    server, base = serve(root)
    report = {"pages": 0, "links_checked": 0, "images_checked": 0, "console_errors": [], "broken_images": [],
              "broken_links": [], "figures": 0, "examples_without_figure": [], "screenshots": []}
    with tempfile.TemporaryDirectory(prefix="varinf-chromium-") as profile:
        driver = make_driver(profile)
        try:
            for page in pages_to_check(root, quick):
                driver.get(base + page)
                deadline = time.time() + 15
                while time.time() < deadline and not driver.execute_script(MATHJAX_IDLE):
                    time.sleep(0.1)
                broken = driver.execute_async_script(EAGER_IMAGES)
                report["images_checked"] += driver.execute_script("return document.images.length")
                report["broken_images"] += [{"page": page, "src": src} for src in broken]
                for entry in driver.get_log("browser"):
                    if entry.get("level") == "SEVERE":
                        report["console_errors"].append({"page": page, "message": entry.get("message", "")})
                hrefs = driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
                for href in set(hrefs):
                    target, fragment = resolve(root, base, href)
                    if target is None:
                        continue
                    report["links_checked"] += 1
                    if not target.is_file():
                        report["broken_links"].append({"page": page, "href": href, "problem": "no such page"})
                    elif fragment and target.suffix == ".html" and fragment not in anchors(target):
                        report["broken_links"].append({"page": page, "href": href, "problem": "no such anchor"})
                if page.startswith("auto_examples/plot_"):
                    figures = driver.execute_script(
                        "return document.querySelectorAll('img.sphx-glr-single-img, img.sphx-glr-multi-img').length")
                    report["figures"] += figures
                    if figures == 0:
                        report["examples_without_figure"].append(page)
                report["pages"] += 1
                for name, shot_page in SCREENSHOTS.items():
                    if page == shot_page:
                        driver.save_screenshot(str(shots / name))
                        report["screenshots"].append(str((shots / name).relative_to(root)))
        finally:
            driver.quit()
            server.shutdown()
    (shots / "site_check.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", nargs="?", default="docs/_build/html", type=Path, help="the built HTML folder")
    parser.add_argument("--quick", action="store_true", help="home, gallery, API index and user guide only")
    args = parser.parse_args(argv)
    if not (args.build / "index.html").is_file():
        print(f"check_site: {args.build} has no index.html (build the docs first)", file=sys.stderr)
        return 2
    t0 = time.time()
    r = check(args.build, args.quick)
    print(f"check_site: {r['pages']} pages, {r['images_checked']} images, {r['links_checked']} internal links in "
          f"{time.time() - t0:.0f} s: {len(r['console_errors'])} console errors, {len(r['broken_images'])} broken "
          f"images, {len(r['broken_links'])} broken internal links; {r['figures']} figures in the gallery, "
          f"{len(r['examples_without_figure'])} examples without one; screenshots: {', '.join(r['screenshots'])}")
    for kind in ("console_errors", "broken_images", "broken_links", "examples_without_figure"):
        for item in r[kind][:20]:
            print(f"  {kind}: {item}")
    failed = r["console_errors"] or r["broken_images"] or r["broken_links"] or r["examples_without_figure"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
