import re
from pathlib import Path

import udc


def test_public_api_resolves_to_the_implementations():
    from udc.deploy.export import export_model
    from udc.targets import get_target

    assert udc.export_model is export_model and udc.get_target is get_target
    for name in udc.__all__:
        assert getattr(udc, name) is not None


def test_the_readme_python_example_names_only_the_public_api():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = readme.split("### Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    named = set(re.findall(r"\budc\.([A-Za-z_]+)\b", example))
    assert named and named <= set(udc.__all__), named - set(udc.__all__)
