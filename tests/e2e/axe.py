"""axe-core in any browser test: ``assert_accessible(page)`` after the page settled.

axe-core is vendored in ``static/vendor/axe-core/`` and loaded from the site's own
origin, so the page's Content Security Policy (``script-src 'self'``) lets it run
without loosening anything; ``page.evaluate`` then calls it through the DevTools
protocol. A violation of impact "serious" or "critical" fails the test, with each rule,
its help text and the elements it names.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

AXE_PATH = "/static/vendor/axe-core/axe.min.js"
FAILING_IMPACTS = ("serious", "critical")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Every axe-core violation on the page as it is now (WCAG 2.x A and AA rules, and
    axe's best practices)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
        page.add_script_tag(url=origin + AXE_PATH)
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5),
            }));
        }"""
    )


def assert_accessible(page: Any, where: str = "") -> list[dict[str, Any]]:
    """Fail on any serious or critical violation; return the milder ones (for a report)."""
    violations = axe_violations(page)
    failing = [v for v in violations if v["impact"] in FAILING_IMPACTS]
    label = where or page.url
    assert not failing, f"axe-core on {label}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in failing
    )
    return [v for v in violations if v["impact"] not in FAILING_IMPACTS]
