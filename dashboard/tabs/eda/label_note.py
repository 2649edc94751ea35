"""The EDA tab's note on the label: which columns define it, which are not labels, what the models may read."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from dashboard import ids
from ml.data import schema as S
from ml.features.layout import FAMILY_UCI, layout_of
from ml.features.prepared import PreparedData
from ml.features.window import window_feature_specs


def _proxy_items(uci: bool) -> list:
    column = {name: html.Code(S.DISPLAY_HEADER[name]) for name in S.DISPLAY_HEADER}
    if uci:
        sources = [column[S.CLOTHING_MODEL], " + ", column[S.SESSION_ID], " + ", column[S.ORDER]]
        price = column[S.PRICE]
    else:
        sources = ["the product and session columns and the event order"]
        price = "the price"
    return [
        html.Li(
            [
                html.Strong("Converted: "),
                "the session views a product it already viewed in the same session (a re-view), derived from ",
                *sources,
                ". There are no purchases in the data, so this is a proxy for purchase intent.",
            ]
        ),
        html.Li([html.Strong("Basket value: "), "the sum of ", price, " of the distinct re-viewed products."]),
    ]


def label_note(data: PreparedData, window: int) -> dbc.Card:
    """Which columns define the label in use, which are not labels, and what the models may read."""
    definition = data.definition
    layout = layout_of(data.clicks)
    uci = layout.family == FAMILY_UCI
    unit = "clicks" if uci else "events"
    if definition.is_proxy:
        label = _proxy_items(uci)
    else:
        label = [
            html.Li([html.Strong("A real label column from the input file is in use, not the re-view proxy.")])
            if definition.name != "purchases"
            else html.Li([html.Strong("The data has purchase events: the label is a real purchase.")]),
            html.Li([html.Strong("Converted: "), definition.converted_text + "."]),
            html.Li([html.Strong("Basket value: "), definition.basket_text + "."]),
        ]
    if uci:
        column = {name: html.Code(S.DISPLAY_HEADER[name]) for name in S.DISPLAY_HEADER}
        label.append(
            html.Li(
                [
                    html.Strong("Not labels: "),
                    column[S.PRICE_2],
                    " (product above its category's average price) and reaching ",
                    column[S.PAGE],
                    " 4 (catalogue layout) describe products and layout, not visitors; "
                    "the product code determines both, so they would leak.",
                ]
            )
        )
    elif data.has_purchases:
        label.append(
            html.Li(
                [
                    html.Strong("Left out of the features: "),
                    f"purchases inside the first {window} {unit} (those sessions are not scored); "
                    "carts inside the window are legitimate features.",
                ]
            )
        )
    features = [
        dbc.Badge(spec.label, color="light", text_color="dark", className="me-1 mb-1 border")
        for spec in window_feature_specs(layout)
    ]
    return dbc.Card(
        [
            dbc.CardHeader(html.H6(f"The label: {definition.title}", className="mb-0")),
            dbc.CardBody(
                [
                    html.Ul(label, className="small ps-3 mb-2"),
                    html.Div(
                        [
                            html.Strong(f"Model inputs: the first {window} {unit} of a session only. "),
                            f"Sessions shorter than {window} {unit}, or that converted within them, are not scored. "
                            "The whole-session features on this tab describe visits; they are not model inputs.",
                        ],
                        className="small mb-2",
                    ),
                    html.Div(features),
                ]
            ),
        ],
        id=ids.EDA_LABEL_NOTE,
        className="h-100",
    )
