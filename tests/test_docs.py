"""The model tables in README.md and docs/ are generated from the shipped manifests: a committed
table that differs from what the manifests give fails here, and no shipped model's Set5 figure
is quoted by hand outside those tables (experiments/README.md, a record of what each experiment
measured when it ran, is not product documentation and is not checked)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import srkit.zoo as zoo
from srkit.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REFRESH = "srkit models --update-docs README.md docs/*.md"


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_committed_tables_match_the_manifests() -> None:
    stale = [rel(p) for p in DOCS if zoo.refresh_generated(p.read_text()) != p.read_text()]
    assert not stale, (
        f"generated model tables out of date in {', '.join(stale)}; refresh them with: {REFRESH}"
    )


def test_the_docs_show_the_generated_tables() -> None:
    names = {rel(p): {m["name"] for m in zoo.GENERATED_BLOCK.finditer(p.read_text())} for p in DOCS}
    assert "default-models" in names["README.md"]
    assert "models-table" in names["docs/models.md"]
    body = zoo.models_markdown()
    for model in zoo.shipped_models():  # every shipped model has a row
        assert f"| {model.name} |" in body or f"| **{model.name}** |" in body


def test_no_shipped_figure_is_quoted_by_hand() -> None:
    figures = {}
    for model in zoo.shipped_models():
        for value in (model.set5_psnr, model.set5_psnr_legacy):
            if value is not None:
                figures[f"{value:.3f}"] = model.name
    quoted = [
        f"{rel(p)}: {figure} ({name})"
        for p in DOCS
        for figure, name in figures.items()
        if figure in zoo.outside_generated(p.read_text())
    ]
    assert not quoted, (
        "shipped models' Set5 figures written by hand (put them in a generated table, "
        f"see src/srkit/zoo.py): {quoted}"
    )


def test_a_stale_table_is_rewritten_and_bad_markers_are_errors() -> None:
    table = zoo.defaults_markdown()
    stale = table.replace(table.splitlines()[2], "| x4 | old | general | 1 | 1.0 / 0.1 | - |")
    text = f"intro\n<!-- generated: default-models -->\n{stale}<!-- end generated -->\nafter\n"
    fresh = zoo.refresh_generated(text)
    assert fresh != text
    assert (
        fresh
        == f"intro\n<!-- generated: default-models -->\n{table}<!-- end generated -->\nafter\n"
    )
    assert zoo.refresh_generated(fresh) == fresh
    with pytest.raises(ValueError, match="unknown generated table"):
        zoo.refresh_generated("<!-- generated: nope -->\n<!-- end generated -->\n")
    with pytest.raises(ValueError, match="no '<!-- end generated -->'"):
        zoo.refresh_generated("<!-- generated: models-table -->\n| stale |\n")


def test_models_command_writes_markdown_and_updates_docs(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["models", "--markdown"])
    assert result.exit_code == 0, result.output
    assert result.output == zoo.models_markdown()
    doc = tmp_path / "doc.md"
    doc.write_text("# t\n<!-- generated: models-table -->\nold\n<!-- end generated -->\n")
    result = runner.invoke(app, ["models", "--update-docs", str(doc)])
    assert result.exit_code == 0, result.output
    assert doc.read_text() == zoo.refresh_generated(doc.read_text())
    assert "old" not in doc.read_text() and zoo.models_markdown() in doc.read_text()
    bad = tmp_path / "bad.md"
    bad.write_text("<!-- generated: nope -->\n<!-- end generated -->\n")
    result = runner.invoke(app, ["models", "--update-docs", str(bad)])
    assert result.exit_code == 1 and "unknown generated table" in result.output


def test_the_blind_table_names_each_models_lr_source_and_camera_niqe(tmp_path: Path) -> None:
    def model(name: str, recipe: dict, scores: dict) -> zoo.ShippedModel:
        return zoo.ShippedModel(
            name=name, arch="l2h", scale=4, params=1234, default=False, purpose="blind",
            set5_psnr=27.1, set5_ssim=0.78, set5_psnr_legacy=None, set5_ssim_legacy=None,
            path=tmp_path / f"{name}.json",
            manifest={"training_recipe": recipe, "scores": scores},
        )  # fmt: skip

    learned = model("cam_x4", {"degraded_by": {"name": "cam_h2l"}},
                    {zoo.CAMERA_SCORES: {"niqe": 5.4321, "images": 100}})  # fmt: skip
    preset = model("real_x4", {"config": {"data": {"degradation": {"preset": "realesrgan"}}}}, {})
    general = zoo.ShippedModel(**{**vars(preset), "name": "plain_x4", "purpose": "general"})
    table = zoo.blind_markdown((learned, preset, general))
    rows = table.splitlines()
    assert len(rows) == 4 and "plain_x4" not in table  # header, rule, the two blind models
    assert "learned H2L `cam_h2l`" in rows[2] and "5.432 (100)" in rows[2]
    cells = [c.strip() for c in rows[3].split("|")]
    assert cells[5] == "preset `realesrgan`" and cells[6] == "-"  # no camera NIQE recorded
