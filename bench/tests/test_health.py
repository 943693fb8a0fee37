from lorawan_bench.health import Sample, analyse


def samples(*items: tuple[float, int | None, str | None]) -> list[Sample]:
    return [Sample(at, status, version) for at, status, version in items]


def test_never_down_is_zero() -> None:
    result = analyse(samples((0.0, 200, "3.32.0"), (0.1, 200, "3.32.0")), "3.32.0")
    assert (result.went_down, result.seconds, result.outages) == (False, 0.0, [])


def test_downtime_runs_from_the_first_failure_to_the_new_version_answering() -> None:
    result = analyse(
        samples(
            (0.0, 200, "3.31.1"),
            (1.0, None, None),
            (2.0, 503, None),
            (3.0, 200, "3.31.1"),  # the old version back for a moment is not the end of the downtime
            (4.0, None, None),
            (5.0, 200, "3.32.0"),
            (6.0, 200, "3.32.0"),
        ),
        "3.32.0",
    )
    assert result.went_down
    assert result.seconds == 4.0
    assert (result.down_at, result.up_at) == (1.0, 5.0)
    assert result.outages == [(1.0, 3.0), (4.0, 5.0)]


def test_not_back_is_none() -> None:
    result = analyse(samples((0.0, 200, "3.31.1"), (1.0, None, None)), "3.32.0")
    assert result.went_down
    assert result.seconds is None
    assert result.outages == [(1.0, None)]


def test_without_a_version_header_any_200_counts() -> None:
    result = analyse(samples((0.0, 200, None), (0.5, None, None), (2.5, 200, None)), "3.32.0")
    assert result.seconds == 2.0


def test_relative_times() -> None:
    result = analyse(samples((10.0, 200, None), (11.0, None, None), (12.5, 200, None)))
    assert result.as_dict(10.0) == {
        "went_down": True,
        "seconds": 1.5,
        "down_at": 1.0,
        "up_at": 2.5,
        "outages": [[1.0, 2.5]],
    }
