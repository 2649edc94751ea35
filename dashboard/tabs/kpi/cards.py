"""The KPI cards: which KPIs a dataset shows, and each one's value and change against the earlier period.

Rates change in percentage points, with the earlier value beside them
("▼ −3.5 pp from 26.3%"); totals and averages change in per cent ("▲ +12.0%
from 1,234"). A change carries an arrow and a word (better / worse) besides
its colour, and the colours are Okabe-Ito's blue and vermillion (darkened for
text), which colour-blind readers tell apart. Totals are not compared when the
data covers only part of the earlier period (see ``ml.features.periods``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dash_bootstrap_components as dbc
from dash import html

from ml.features import periods
from ml.features.kpis import TOTAL_KPIS, Delta, KpiComparison
from ml.features.prepared import PreparedData

MINUS = "−"  # U+2212, as printed numbers use


@dataclass(frozen=True)
class CardSpec:
    key: str
    title: str
    fmt: str
    good_when_up: bool = True
    help_text: str | None = None


def card_specs(data: PreparedData) -> tuple[CardSpec, ...]:
    """The cards for a dataset: real purchase KPIs when it has purchases, the proxy's otherwise."""
    title = data.definition.title
    if data.has_purchases:
        return (
            CardSpec("sessions", "Sessions", "{:,.0f}"),
            CardSpec("conversion_rate", title, "{:.1%}", help_text="sessions with a purchase"),
            CardSpec("revenue", "Revenue", "{:,.0f}", help_text="sum of purchase prices"),
            CardSpec(
                "orders",
                "Orders",
                "{:,.0f}",
                help_text="distinct orders (one per purchasing session when the data has no order IDs)",
            ),
            CardSpec("average_order_value", "Average order value", "{:,.2f}", help_text="revenue / orders"),
            CardSpec("cart_rate", "Cart rate", "{:.1%}", help_text="sessions that added to cart"),
            CardSpec(
                "cart_abandonment",
                "Cart abandonment",
                "{:.1%}",
                good_when_up=False,
                help_text="sessions with a cart but no purchase / sessions with a cart",
            ),
            CardSpec("bounce_rate", "Bounce rate", "{:.1%}", good_when_up=False, help_text="sessions with one event"),
        )
    return (
        CardSpec("sessions", "Sessions", "{:,.0f}"),
        CardSpec("clicks", "Clicks", "{:,.0f}"),
        CardSpec("clicks_per_session", "Clicks per session", "{:,.2f}"),
        CardSpec("bounce_rate", "Bounce rate", "{:.1%}", good_when_up=False, help_text="sessions with one click"),
        CardSpec("conversion_rate", title, "{:.1%}", help_text="sessions that re-viewed a product"),
        CardSpec("revenue", "Potential revenue", "${:,.0f}", help_text="sum of basket values (proxy)"),
        CardSpec(
            "revenue_per_converting_session",
            "Revenue per converting session",
            "${:,.2f}",
            help_text="potential revenue / converting sessions",
        ),
    )


def value_text(spec: CardSpec, value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else spec.fmt.format(value)


def _signed(number: float, fmt: str) -> str:
    text = fmt.format(abs(number))
    return ("+" if number > 0 else MINUS if number < 0 else "±") + text


def change_phrase(spec: CardSpec, delta: Delta) -> str:
    """ "−3.5 pp from 26.3%" for a rate, "+12.0% from 1,234" for a total or an average."""
    if delta.kind == "pp":
        return f"{_signed(round(delta.change, 1), '{:.1f}')} pp from {value_text(spec, delta.previous)}"
    return f"{_signed(delta.change * 100, '{:.1f}')}% from {value_text(spec, delta.previous)}"


def verdict(spec: CardSpec, delta: Delta) -> str:
    """The change in a word: "better", "worse" or "unchanged" (at the shown precision)."""
    shown = round(delta.change, 1) if delta.kind == "pp" else round(delta.change * 100, 1)
    if shown == 0:
        return "unchanged"
    return "better" if (shown > 0) == spec.good_when_up else "worse"


def card_sentence(spec: CardSpec, comparison: KpiComparison) -> str:
    """The card in one line, as a screen reader reads it: "Conversion (proxy) 22.8% (−3.5 pp from 26.3%)"."""
    value = value_text(spec, comparison.current.get(spec.key))
    delta = comparison.delta(spec.key)
    return f"{spec.title} {value}" + (f" ({change_phrase(spec, delta)})" if delta else "")


def no_change_reason(spec: CardSpec, comparison: KpiComparison) -> str:
    period = comparison.period
    if period is not None and period.kind == periods.PARTIAL and spec.key in TOTAL_KPIS:
        return f"not compared: the data covers {period.compared_days} of the {period.length} days before"
    if period is not None and period.kind == periods.NONE:
        return period.reason or "no earlier period to compare"
    return "no earlier value to compare"


def footer(spec: CardSpec, comparison: KpiComparison) -> list:
    """The change line: arrow, change with the earlier value, a word, and what it is compared with."""
    delta = comparison.delta(spec.key)
    if delta is None:
        return [html.Span(no_change_reason(spec, comparison), className="kpi-change kpi-none")]
    word = verdict(spec, delta)  # the word and the colour say good or bad; the arrow says up or down
    arrow = "■" if word == "unchanged" else ("▲" if delta.change > 0 else "▼")
    partial = comparison.period is not None and comparison.period.kind == periods.PARTIAL
    return [
        html.Span(f"{arrow} {change_phrase(spec, delta)}", className=f"kpi-change kpi-{word}"),
        html.Span(f" {word}", className=f"kpi-verdict kpi-{word}"),
        html.Span(f" ({comparison.period.compared_days} earlier days)" if partial else "", className="kpi-period-note"),
    ]


def kpi_card(spec: CardSpec, comparison: KpiComparison) -> dbc.Card:
    """A KPI card: title, big value, and the change against the earlier period."""
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(spec.title, className="kpi-title", title=spec.help_text or spec.title),
                html.Div(value_text(spec, comparison.current.get(spec.key)), className="kpi-value"),
                html.Div(footer(spec, comparison), className="kpi-footer small", title=card_sentence(spec, comparison)),
            ],
        ),
        className="kpi-card h-100",
    )


def kpi_cards(comparison: KpiComparison, specs: tuple[CardSpec, ...]) -> list[dbc.Col]:
    """One card per KPI, with its change against the earlier period."""
    return [dbc.Col(kpi_card(spec, comparison), xs=6, md=3, xl=True, className="mb-2") for spec in specs]
