"""Every `for:` the generator writes says where it comes from (issue 15: the SRE workbook's
table gives no `for:`, so each value is lightkeeper's own and must carry its reason)."""

from __future__ import annotations

import re
from importlib import resources

from lightkeeper import slo_math
from lightkeeper.stack import alert_families, slo


def _comment_block(text: str, start: str) -> str:
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if start in line)
    block = []
    for line in lines[first:]:
        if not line.startswith("#"):
            break
        block.append(line.lstrip("# "))
    return " ".join(block)


def test_every_family_for_is_explained_in_the_families_file() -> None:
    text = resources.files("lightkeeper.stack").joinpath("alert_families.yaml").read_text()
    reasons = _comment_block(text, "Where the `for:` values come from")
    explained = set(re.findall(r"\b(\d+[smh]) for\b", reasons))
    assert explained, reasons
    used = {f.for_ for f in alert_families.FAMILIES}
    assert used <= explained, f"for: values without a reason: {sorted(used - explained)}"


def test_every_default_slo_tier_for_is_explained_next_to_the_tiers() -> None:
    source = resources.files("lightkeeper.stack").joinpath("slo.py").read_text()
    reasons = _comment_block(source, "The table gives no `for:`")
    for tier in slo_math.DEFAULT_TIERS:
        # "- page-fast 2m:" or "- ticket-fast / ticket-slow 1h:"
        pattern = rf"-\s(?:[\w-]+\s/\s)*{re.escape(tier.name)}(?:\s/\s[\w-]+)*\s{re.escape(tier.for_)}:"
        assert re.search(pattern, reasons), (tier.name, tier.for_)
    assert {t.for_ for t in slo.DEFAULT_TIERS} == {t.for_ for t in slo_math.DEFAULT_TIERS}


def test_the_no_data_for_default_is_explained_next_to_the_tiers() -> None:
    from lightkeeper.spec.models import SLOAlerting

    source = resources.files("lightkeeper.stack").joinpath("slo.py").read_text()
    reasons = _comment_block(source, "The table gives no `for:`")
    default = SLOAlerting().no_data_for
    assert re.search(rf"-\sno data {re.escape(default)} \(`alerting.no_data_for`\):", reasons), reasons
