"""``srkit archs``: the catalog on the command line."""

from __future__ import annotations

from typer.testing import CliRunner

from srkit import cli
from srkit.archs.catalog import print_catalog


def test_print_catalog_lists_params_macs_and_references(capsys) -> None:
    from srkit.archs.catalog import catalog_rows

    print_catalog(catalog_rows(size=64, names=["rlfn_s", "carn_m"]), size=64)
    text = capsys.readouterr().out
    assert "rlfn_s" in text and "carn_m" in text
    assert "470,208" in text and "414,787" in text  # params at x4
    assert "Kong et al., CVPRW 2022" in text and "Ahn et al., ECCV 2018" in text
    assert "MACs" in text and "1 MAC = 2 FLOPs" in text


def test_srkit_archs_command() -> None:
    result = CliRunner().invoke(cli.app, ["archs", "--size", "32"])
    assert result.exit_code == 0, result.output
    for name in ("srcnn", "edsr_baseline", "dbpn", "rrdb", "a2n", "imdn", "rlfn_s", "carn_m"):
        assert name in result.output
    assert "43,089,923" in result.output  # EDSR x4
