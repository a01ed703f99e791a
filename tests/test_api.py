import udc


def test_public_api_resolves_to_the_implementations():
    from udc.export import export_model
    from udc.targets import get_target

    assert udc.export_model is export_model and udc.get_target is get_target
    for name in udc.__all__:
        assert getattr(udc, name) is not None
