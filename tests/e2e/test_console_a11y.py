"""Accessibility of every console view, checked in Chromium with real DOM queries.

The views are the console's own list (``VIEWS`` of js/app.js, as the navigation renders it), so
a view added later is checked too. Each opens, logged in with an operator key (the Models view
then renders in full), at 1280 px and at 375 px in the light scheme and at 1280 px in the dark
scheme, and must have:

* an accessible name on every input, select and textarea (label, aria-label or aria-labelledby);
* a name on every button and link, ``alt`` on every image;
* exactly one ``h1``;
* no horizontal scroll of the page at 375 px;
* a visible focus style (a ``:focus-visible`` rule with an outline, and an outline on the control
  the keyboard focuses);
* text contrast ≥ 4.5:1 (3:1 for large text, WCAG 1.4.3) for body text, buttons and navigation
  links, computed from ``getComputedStyle`` colours over the first opaque background behind them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import ARTIFACTS
from tests.integration.conftest import RunningServer

APP_JS = Path(__file__).resolve().parents[2] / "src/facesocial/console/static/js/app.js"


def declared_views() -> list[str]:
    """The ``path`` of every page module in app.js's VIEWS (read from the modules themselves)."""
    source = APP_JS.read_text()
    imports = dict(re.findall(r'import (\w+) from "\./pages/([\w-]+)\.js";', source))
    names = re.search(r"const VIEWS = \[([^\]]*)\]", source)
    assert names, "app.js declares no VIEWS list"
    paths = []
    for name in [n.strip() for n in names.group(1).split(",") if n.strip()]:
        module = APP_JS.parent / "pages" / f"{imports[name]}.js"
        path = re.search(r'path:\s*"([^"]+)"', module.read_text())
        assert path, f"{module} exports no path"
        paths.append(path.group(1))
    return paths


VIEWS = declared_views()
CONFIGURATIONS = [("light", 1280), ("light", 375), ("dark", 1280)]

# Everything runs in the page; returns a list of "check: element — detail" problems.
CHECKS = r"""
(phone) => {
  const problems = [];
  const visible = (node) => {
    if (!(node instanceof Element)) return false;
    const style = getComputedStyle(node);
    if (style.visibility === "hidden" || style.display === "none") return false;
    const box = node.getBoundingClientRect();
    return box.width > 0 && box.height > 0;
  };
  const describe = (node) => {
    const id = node.id ? `#${node.id}` : "";
    const classes = typeof node.className === "string" ? node.className.trim() : "";
    const cls = classes ? `.${classes.split(/\s+/).join(".")}` : "";
    const text = (node.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
    return `<${node.tagName.toLowerCase()}${id}${cls}> "${text}"`;
  };
  const labelledBy = (node) =>
    (node.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean)
      .map((id) => document.getElementById(id)?.textContent?.trim() || "").join(" ").trim();
  const nameOf = (node) => {
    const aria = (node.getAttribute("aria-label") || "").trim();
    if (aria) return aria;
    const by = labelledBy(node);
    if (by) return by;
    if (["INPUT", "SELECT", "TEXTAREA"].includes(node.tagName)) {
      const labels = node.labels ? [...node.labels] : [];
      const text = labels.map((l) => l.textContent.trim()).join(" ").trim();
      if (text) return text;
      if (node.type === "submit" || node.type === "button") return (node.value || "").trim();
    } else {
      const text = (node.innerText || node.textContent || "").trim();
      if (text) return text;
      const img = node.querySelector("img[alt]");
      if (img && img.alt.trim()) return img.alt.trim();
    }
    return (node.getAttribute("title") || "").trim();
  };

  // 1. Form controls have an accessible name.
  for (const node of document.querySelectorAll("input, select, textarea")) {
    if (node.type === "hidden") continue;
    if (!nameOf(node)) problems.push(`unnamed control: ${describe(node)} type=${node.type || ""}`);
  }
  // 2. Buttons and links have a name; images have alt.
  for (const node of document.querySelectorAll("button, a[href], [role=button]")) {
    if (!nameOf(node)) problems.push(`unnamed ${node.tagName.toLowerCase()}: ${describe(node)}`);
  }
  for (const node of document.querySelectorAll("img")) {
    const src = node.getAttribute("src") || "(no src)";
    if (!node.hasAttribute("alt")) problems.push(`image without alt: ${src}`);
  }
  // 3. One h1.
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`h1 count: ${h1} (want 1)`);
  // 4. No horizontal scroll on a phone.
  if (phone) {
    const width = document.documentElement.scrollWidth;
    if (width > window.innerWidth) {
      const wide = [...document.querySelectorAll("main *")]
        .filter((n) => n.getBoundingClientRect().right > window.innerWidth + 1 && visible(n))
        .filter((n) => !n.closest(".table-wrap, pre"));
      const names = wide.slice(0, 3).map(describe).join(", ");
      problems.push(`horizontal scroll: page ${width}px > ${window.innerWidth}px; widest: ${names}`);
    }
  }
  // 5. A :focus-visible rule with an outline exists.
  let focusRule = false;
  for (const sheet of document.styleSheets) {
    let rules;
    try { rules = sheet.cssRules; } catch { continue; }
    const walk = (list) => {
      for (const rule of list) {
        if (rule.cssRules) walk(rule.cssRules);
        if (rule.selectorText && rule.selectorText.includes(":focus-visible") && rule.style &&
            /(outline|box-shadow)\s*:\s*(?!none)/.test(rule.style.cssText)) focusRule = true;
      }
    };
    walk(rules);
  }
  if (!focusRule) problems.push("no :focus-visible rule with an outline");

  // 6. Contrast.
  const parse = (value) => {
    const m = value.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const parts = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const background = (node) => {
    const layers = [];
    for (let n = node; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let result = { r: 255, g: 255, b: 255, a: 1 };  // the canvas behind everything
    if (layers.length && layers[layers.length - 1].a >= 1) result = layers.pop();
    while (layers.length) result = over(layers.pop(), result);
    return result;
  };
  const luminance = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const textNodes = new Set();
  for (const node of document.querySelectorAll("header *, main *, #toasts *")) {
    if (!visible(node) || node.closest("[aria-hidden=true], canvas, video, svg, .skip-link")) continue;
    if (node.disabled || node.closest("button:disabled, [aria-disabled=true]")) continue;
    const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
    if (own || node.matches("button, #nav a, input[type=submit]")) textNodes.add(node);
  }
  for (const node of textNodes) {
    const style = getComputedStyle(node);
    let fg = parse(style.color);
    if (!fg) continue;
    const bg = background(node);
    if (fg.a < 1) fg = over(fg, bg);
    // Opacity of the element and its ancestors fades the text towards what is behind.
    let opacity = 1;
    for (let n = node; n; n = n.parentElement) opacity *= Number(getComputedStyle(n).opacity);
    if (opacity < 1) fg = over({ ...fg, a: opacity }, bg);
    const size = parseFloat(style.fontSize);
    const bold = Number(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const need = large ? 3 : 4.5;
    const got = ratio(fg, bg);
    if (got + 1e-6 < need) {
      const under = `rgb(${Math.round(bg.r)}, ${Math.round(bg.g)}, ${Math.round(bg.b)})`;
      const what = `${describe(node)} color ${style.color} on ${under}`;
      problems.push(`contrast ${got.toFixed(2)} < ${need}: ${what}`);
    }
  }
  return { problems, contrastChecked: textNodes.size };
}
"""


@pytest.fixture(scope="module")
def operator_key(console_server: RunningServer, console_data_dir: Path) -> str:
    import subprocess
    import sys
    import uuid

    answer = subprocess.run(
        [sys.executable, "-m", "facesocial", "keys", "create", "--name", f"a11y {uuid.uuid4()}",
         "--role", "operator", "--data-dir", str(console_data_dir)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return answer.stdout.strip().splitlines()[-1]


@pytest.fixture
def open_view(
    browser: Browser, console_server: RunningServer, operator_key: str
) -> Iterator[Callable[..., Page]]:
    contexts: list[Any] = []

    def make(view: str, scheme: str, width: int) -> Page:
        context = browser.new_context(
            viewport={"width": width, "height": 900 if width > 400 else 740},
            base_url=console_server.base,
            permissions=["camera"],
            color_scheme=scheme,  # type: ignore[arg-type]
        )
        context.set_default_timeout(30_000)
        contexts.append(context)
        tab = context.new_page()
        tab.goto("/console")
        tab.get_by_label("API key", exact=True).fill(operator_key)
        tab.get_by_role("button", name="Log in with key").click()
        tab.get_by_role("button", name="Log out").wait_for()
        tab.goto(f"/console#/{view}")
        tab.wait_for_function(
            f"location.hash === '#/{view}' && document.querySelector('main .view') !== null"
        )
        # Let the view's first API calls answer and render (tables, forms, errors).
        tab.wait_for_timeout(2500)
        return tab

    yield make
    for context in contexts:
        context.close()


def test_the_views_are_the_navigation(open_view: Callable[..., Page]) -> None:
    """The list checked here is what the console offers: every nav link, in order."""
    tab = open_view(VIEWS[0], "light", 1280)
    links = tab.locator("#nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert links == [f"#/{view}" for view in VIEWS]


@pytest.mark.parametrize("view", VIEWS)
def test_view_is_accessible(open_view: Callable[..., Page], view: str) -> None:
    failures: list[str] = []
    for scheme, width in CONFIGURATIONS:
        tab = open_view(view, scheme, width)
        where = f"{view} {scheme} {width}px"
        found: dict[str, Any] = tab.evaluate(CHECKS, width < 700)
        problems: list[str] = found["problems"]
        # Not a vacuous pass: the contrast check saw the page's text.
        assert found["contrastChecked"] > 5, f"{where}: only {found['contrastChecked']} text elements"
        if width < 700:
            # The phone menu open: its links are checked too.
            tab.get_by_role("button", name="Menu").click()
            problems += [p for p in tab.evaluate(CHECKS, True)["problems"] if "<a" in p]
        # The focus ring on a control reached by the keyboard.
        tab.locator("h1").focus()
        tab.keyboard.press("Tab")
        outline = tab.evaluate(
            "() => { const s = getComputedStyle(document.activeElement);"
            " return [document.activeElement.tagName, s.outlineStyle, parseFloat(s.outlineWidth) || 0]; }"
        )
        if outline[0] != "BODY" and (outline[1] == "none" or outline[2] < 1):
            problems.append(f"no visible focus ring on the focused {outline[0]}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"a11y_{view}_{scheme}_{width}.png"), full_page=True)
        failures += [f"{where}: {p}" for p in dict.fromkeys(problems)]
    assert not failures, "accessibility problems:\n" + "\n".join(failures)


def test_the_checks_catch_what_they_look_for(open_view: Callable[..., Page]) -> None:
    """The checker is not vacuous: a page made worse on purpose fails each check."""
    tab = open_view(VIEWS[-1], "light", 375)
    tab.evaluate(
        """() => {
        const main = document.querySelector("main");
        const grey = document.createElement("p");
        grey.textContent = "pale text";
        grey.style.color = "#aaaaaa";
        const input = document.createElement("input");
        const button = document.createElement("button");
        const img = document.createElement("img");
        const h1 = document.createElement("h1");
        h1.textContent = "second heading";
        const wide = document.createElement("div");
        wide.style.width = "600px";
        wide.textContent = "too wide";
        main.append(grey, input, button, img, h1, wide);
        }"""
    )
    problems = "\n".join(tab.evaluate(CHECKS, True)["problems"])
    for expected in ["contrast", "unnamed control", "unnamed button", "image without alt", "h1 count: 2",
                     "horizontal scroll"]:  # fmt: skip
        assert expected in problems, f"{expected!r} not reported:\n{problems}"
