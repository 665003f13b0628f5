"""Charts drawn by the server as inline SVG: no script, no CDN, readable on a phone. Each one
carries its numbers as text (a title and labels), so a screen reader says what it shows."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 220
TOP, BOTTOM = 24, 40  # room for the value above a bar and the label below the axis


def score_bars(title: str, points: Sequence[tuple[str, int | None, str]]) -> Markup:
    """A bar per point for a score from -100 to 100 (NPS): up from the middle line when
    positive, down when negative; none where there is no score. Each point is (label, score,
    what the score rests on, such as "4 ratings")."""
    if not points:
        return Markup("")
    # Whole numbers: the viewBox is drawn to scale anyway, and the page stays short.
    slot = WIDTH // len(points)
    middle = TOP + (HEIGHT - TOP - BOTTOM) // 2
    scale = (HEIGHT - TOP - BOTTOM) / 200
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="0" y1="{middle}" x2="{WIDTH}" y2="{middle}" class="axis"/>',
    ]
    for index, (label, score, basis) in enumerate(points):
        x = index * slot + slot // 5
        centre = index * slot + slot // 2
        shown = "—" if score is None else str(score)
        if score is not None:
            height = max(round(abs(score) * scale), 1)
            y = middle - height if score >= 0 else middle
            kind = "up" if score >= 0 else "down"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{slot * 3 // 5}" '
                f'height="{height}" class="bar {kind}">'
                f"<title>{escape(label)}: {shown} ({escape(basis)})</title></rect>"
            )
        parts.append(
            f'<text x="{centre}" y="{TOP - 8}" class="value">{escape(shown)}</text>'
            f'<text x="{centre}" y="{HEIGHT - 22}" class="label">{escape(label)}</text>'
            f'<text x="{centre}" y="{HEIGHT - 6}" class="basis">{escape(basis)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


FUNNEL_WIDTH, FUNNEL_ROW, FUNNEL_LABEL = 220, 18, 80  # the bars start after their labels


def funnel_bars(title: str, stages: Sequence[tuple[str, int]]) -> Markup:
    """A bar per stage of a funnel (sent, delivered, replied...), each as long as its share of
    the first stage, its count written after it: where a step loses its customers shows at a
    glance."""
    if not stages:
        return Markup("")
    first = max(stages[0][1], 1)
    room = FUNNEL_WIDTH - FUNNEL_LABEL - 40  # and the count after the longest bar
    height = len(stages) * FUNNEL_ROW + 4
    parts = [
        f'<svg class="chart funnel" viewBox="0 0 {FUNNEL_WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, count) in enumerate(stages):
        top = 2 + index * FUNNEL_ROW
        length = round(room * min(count, first) / first)
        parts.append(
            f'<text x="0" y="{top + 13}" class="label">{escape(label)}</text>'
            f'<rect x="{FUNNEL_LABEL}" y="{top + 3}" width="{length}" '
            f'height="{FUNNEL_ROW - 6}" class="bar up"/>'
            f'<text x="{FUNNEL_LABEL + length + 4}" y="{top + 13}" class="value">{count}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
