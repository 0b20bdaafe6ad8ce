"""Accessibility checks in the page, written here (no outside downloads): every visible
form control has an accessible name, as Chromium's accessibility tree computes it, and
text meets WCAG 2's contrast (4.5:1, 3:1 for large text) against the background it is
drawn on, from computed styles."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

# Roles of form controls and of what works like one.
CONTROL_ROLES = frozenset(
    {
        "button",
        "checkbox",
        "combobox",
        "listbox",
        "menuitem",
        "radio",
        "searchbox",
        "slider",
        "spinbutton",
        "switch",
        "textbox",
        "DisclosureTriangle",  # a <summary>
    }
)


def unnamed_controls(page: Page) -> list[str]:
    """The visible form controls without an accessible name, each as role and HTML."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes: list[dict[str, Any]] = cdp.send("Accessibility.getFullAXTree")["nodes"]
        found = []
        for node in nodes:
            role = node.get("role", {}).get("value")
            if node.get("ignored") or role not in CONTROL_ROLES:
                continue
            if str(node.get("name", {}).get("value", "")).strip():
                continue
            html = ""
            if "backendDOMNodeId" in node:
                html = cdp.send("DOM.getOuterHTML", {"backendNodeId": node["backendDOMNodeId"]})[
                    "outerHTML"
                ][:160]
            found.append(f"{role}: {html}")
        return found
    finally:
        cdp.detach()


_CONTRAST = """(selector) => {
  const parse = (value) => {
    const m = value.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, below) => ({
    r: top.r * top.a + below.r * (1 - top.a),
    g: top.g * top.a + below.g * (1 - top.a),
    b: top.b * top.a + below.b * (1 - top.a),
    a: 1,
  });
  const background = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const color = parse(getComputedStyle(e).backgroundColor);
      if (color && color.a > 0) { layers.push(color); if (color.a >= 1) break; }
    }
    return layers.reduceRight((below, top) => over(top, below), { r: 255, g: 255, b: 255, a: 1 });
  };
  const luminance = (c) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const ownText = (e) => Array.from(e.childNodes)
    .some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
  const failures = [];
  for (const element of document.querySelectorAll(selector)) {
    const style = getComputedStyle(element);
    const box = element.getBoundingClientRect();
    if (!box.width || !box.height || style.visibility === "hidden" || element.disabled) continue;
    if (!ownText(element)) continue;
    const below = background(element);
    const color = over(parse(style.color), below);
    const [light, dark] = [luminance(color), luminance(below)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      const text = element.textContent.trim().slice(0, 40);
      const on = [below.r, below.g, below.b].map(Math.round).join(", ");
      const what = `${element.tagName}.${element.className} "${text}"`;
      failures.push(`${ratio.toFixed(2)}:1 ${what}: ${style.color} on rgb(${on})`);
    }
  }
  return failures;
}"""

# Pills, badges and the other small coloured text the pages use, and all text under them.
SMALL_TEXT = (
    ".pill, .badge, .verb, .countdown, .muted, .help, .crumbs, .overdue, .error, p.ok, "
    ".banner, .banner *, button, .button, summary, .grid th, .count, label, legend"
)


def low_contrast(page: Page, selector: str = "body *") -> list[str]:
    """Elements with text of their own under ``selector`` whose contrast is too low."""
    return page.evaluate(_CONTRAST, selector)


def open_every_disclosure(page: Page) -> None:
    """Open every <details> (popovers, add forms), so their controls are checked too, and
    wait for what opening one loads (the kill switch's list of scopes) to be in place."""
    page.evaluate(_OPEN_EVERY_DISCLOSURE)


# Elements that load when a <details> opens (hx-trigger "toggle ... from:#id") are waited
# for until htmx has settled their answer; an error or ten seconds without one fails.
_OPEN_EVERY_DISCLOSURE = """async () => {
  const closed = (el) => {
    const from = (el.getAttribute('hx-trigger') || '').match(/from:(#[\\w-]+)/);
    const details = from ? document.querySelector(from[1]) : el.closest('details');
    return details !== null && !details.open;
  };
  const loads = [...document.querySelectorAll('[hx-trigger*="toggle"]')].filter(closed).map(
    (el) => new Promise((resolve, reject) => {
      el.addEventListener('htmx:afterSettle', resolve, {once: true});
      el.addEventListener('htmx:responseError', () => reject(new Error(`${el.id} failed`)));
      setTimeout(() => reject(new Error(`${el.id} did not load in 10 s`)), 10000);
    }));
  document.querySelectorAll('details').forEach((d) => { d.open = true; });
  await Promise.all(loads);
}"""
