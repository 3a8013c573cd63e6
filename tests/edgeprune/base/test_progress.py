import io

from edgeprune.base.progress import Progress


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    with Progress(4, "work", interval_s=0.0, stream=stream) as progress:
        for _ in range(4):
            progress.update(1, loss=0.5)
    lines = stream.getvalue().strip().splitlines()
    assert lines[-1].startswith("work: 4/4 (100%) loss 0.5")
    assert "\r" not in stream.getvalue()


def test_disabled_progress_prints_nothing():
    stream = io.StringIO()
    progress = Progress(2, "work", interval_s=0.0, stream=stream, enabled=False)
    progress.update(2)
    progress.write("hello")
    assert stream.getvalue() == ""
