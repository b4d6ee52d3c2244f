"""The local cloud patches moto internals: this fails loudly, naming the internal, when an upgrade moves one."""

from localcloud import patches


def test_patched_moto_internals_are_where_the_patches_expect_them():
    patches.check_internals()


def test_the_check_names_what_moved(monkeypatch):
    monkeypatch.setattr(patches, "INTERNALS", [*patches.INTERNALS, ("moto.awslambda.models", "NoSuchThing.x")])
    try:
        patches.check_internals()
    except patches.MotoInternalMoved as err:
        assert "moto.awslambda.models:NoSuchThing.x" in str(err)
    else:
        raise AssertionError("a vanished internal was not reported")
