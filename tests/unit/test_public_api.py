import aris3nb


def test_all_is_sorted_and_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(aris3nb) if not name.startswith("_") and name not in ("annotations",)}
    modules = {name for name in public if type(getattr(aris3nb, name)).__name__ == "module"}
    assert sorted(aris3nb.__all__) == aris3nb.__all__
    assert set(aris3nb.__all__) == (public - modules) | {"__version__"}
