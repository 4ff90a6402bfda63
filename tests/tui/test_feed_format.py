"""How the activity feed names where an event happened."""

from __future__ import annotations

import pytest

from jacmon.tui.format import where


@pytest.mark.parametrize(
    ("event", "shown"),
    [
        ({"path": "web-dev", "module": "m2", "item": "web-dev/m2/l1/video"}, "web-dev/m2/l1/video"),
        ({"path": "p", "item": "https://lms.example/course/q/quiz-2"}, "p/quiz-2"),
        ({"path": "p", "module": "m", "item": "quiz"}, "p/m/quiz"),
        ({"path": "p", "module": "m", "item": "other/m/quiz"}, "p/m/other/m/quiz"),
        ({"learner": "u1"}, ""),
    ],
)
def test_where_drops_the_prefix_the_line_already_shows(event, shown):
    assert where(event) == shown
