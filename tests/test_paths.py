"""Data paths as cards and the README write them, whichever machine or checkout recorded them."""
from dl_core.paths import display_path


def test_a_path_under_the_data_root_reads_as_the_shared_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "data"))
    assert display_path(tmp_path / "data" / "superres" / "CSet5") == "../shared/data/superres/CSet5"


def test_a_path_recorded_on_another_checkout_reads_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "elsewhere"))  # CI clones away from the machine that trained
    assert display_path("/work/shared/data/superres/CSet5") == "../shared/data/superres/CSet5"
    assert display_path("../shared/data/style/the_scream.jpg") == "../shared/data/style/the_scream.jpg"


def test_a_path_outside_any_data_folder_is_kept_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv("DL_DATA_DIR", str(tmp_path / "data"))
    assert display_path("/home/me/photos") == "/home/me/photos"
