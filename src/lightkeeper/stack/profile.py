"""Generation profiles: the production output, and a fast one for end-to-end tests.

The `test` profile divides every rate window, SLO window and `for:` duration by 60
and scrapes and evaluates every second, so an alert that needs five minutes in
production fires in five seconds against a real Prometheus. Thresholds, labels and
rule structure stay the same: the test exercises the rules that ship.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightkeeper.stack import promql


@dataclass(frozen=True)
class Profile:
    name: str
    scale: int = 1
    scrape_interval: str | None = None
    evaluation_interval: str | None = None

    def window(self, text: str) -> str:
        """A rate window or `for:` duration scaled for this profile."""
        if self.scale == 1:
            return promql.duration(promql.seconds(text))
        return promql.duration(promql.seconds(text) / self.scale)


PROFILES: dict[str, Profile] = {
    "default": Profile("default"),
    "test": Profile("test", scale=60, scrape_interval="1s", evaluation_interval="1s"),
}


def get_profile(name: str | None) -> Profile:
    """The named profile; None means `default`."""
    key = name or "default"
    if key not in PROFILES:
        raise ValueError(f"unknown profile {key!r}; use one of: {', '.join(PROFILES)}")
    return PROFILES[key]
