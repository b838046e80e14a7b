"""Make docs/images/console-detect.png: the console's Detect view on a real photo.

    python scripts/console_screenshot.py --url http://127.0.0.1:8000 --key fs_... [--out FILE]

Drives the machine's Chromium (/usr/bin/chromium) with Playwright, as tests/e2e do; the photo is
scikit-image's astronaut (NASA, public domain), detected with the 468-point mesh and attributes.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import skimage.data
from PIL import Image
from playwright.sync_api import expect, sync_playwright

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/images/console-detect.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "astronaut.jpg"
        Image.fromarray(skimage.data.astronaut()).save(photo, quality=92)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900}, base_url=args.url)
            page.goto("/console")
            page.get_by_label("API key", exact=True).fill(args.key)
            page.get_by_role("button", name="Log in with key").click()
            page.get_by_role("button", name="Log out").wait_for()
            page.locator("input[type=file]").first.set_input_files(str(photo))
            page.get_by_label("Landmarks").select_option(index=2)
            page.get_by_label("Return attributes (age, gender, emotion)").check()
            page.get_by_role("button", name="Detect faces").click()
            expect(page.locator("canvas[data-faces]")).to_have_attribute("data-faces", "1")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    # A palette of 192 colours keeps the picture sharp at a third of the size (it lives in git).
    shot = Image.open(args.out).convert("RGB")
    shot.quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(args.out)


if __name__ == "__main__":
    main()
