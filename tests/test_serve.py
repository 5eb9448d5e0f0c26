"""srkit serve: the JSON API in process (bad input, limits, queue order, scores) and the real
server process (binds, answers, leaves no file outside its temporary folder)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("starlette", reason="srkit serve needs the app extra: pip install 'srkit[app]'")
pytest.importorskip("httpx", reason="the API tests need httpx (the app extra)")
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

from starlette.testclient import TestClient  # noqa: E402

from srkit.bench.protocol import matlab_bicubic_lr  # noqa: E402
from srkit.image.io import read_image, read_rgb, write_image  # noqa: E402
from srkit.infer import Upscaler  # noqa: E402
from srkit.metrics import mod_crop, psnr_ssim  # noqa: E402
from srkit.models import resolve_model  # noqa: E402
from srkit.serve.app import create_app  # noqa: E402
from srkit.serve.jobs import Settings  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "src" / "srkit" / "assets" / "Set5"
BUTTERFLY = ASSETS / "butterfly.png"


def png_bytes(array: np.ndarray, tmp_path: Path, name: str = "x.png") -> bytes:
    return write_image(tmp_path / name, array).read_bytes()


def reference(name: str, scale: int = 4) -> tuple[np.ndarray, float, float]:
    """What the page must show for BUTTERFLY in degrade mode: the SR pixels, PSNR and SSIM as
    srkit bench computes them."""
    hr = mod_crop(torch.from_numpy(read_rgb(BUTTERFLY)).permute(2, 0, 1)[None], scale)
    lr = matlab_bicubic_lr(hr, scale)[0].permute(1, 2, 0).numpy()
    sr = Upscaler(resolve_model(name, scale)).upscale_array(np.ascontiguousarray(lr))
    p, s = psnr_ssim(torch.from_numpy(sr).permute(2, 0, 1)[None], hr, border=scale)
    return sr, float(p[0]), float(s[0])


def wait_done(client: TestClient, job_id: str) -> dict:
    for _ in range(2400):
        body = client.get(f"/api/jobs/{job_id}").json()
        if body["state"] in ("done", "error"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {body}")


@pytest.fixture
def client(tmp_path: Path):
    settings = Settings(max_pixels=300_000, max_upload_bytes=2 << 20, max_models=3)
    with TestClient(create_app(tmp_path / "server", settings)) as test_client:
        yield test_client


def post(client: TestClient, data: bytes, name: str = "a.png", hr: bytes | None = None, **form):
    files = {"image": (name, data, "image/png")}
    if hr is not None:
        files["hr"] = ("hr.png", hr, "image/png")
    fields = {"mode": "upscale", "scale": "4", "models": "bicubic", **form}
    return client.post("/api/jobs", files=files, data=fields)


def test_catalogue_lists_shipped_models_and_bicubic(client: TestClient) -> None:
    from srkit.zoo import shipped_models, upscaling_models

    body = client.get("/api/models").json()
    names = {(m["name"], m["scale"]) for m in body["models"]}
    assert {(m.name, m.scale) for m in upscaling_models()} <= names
    # the same-size networks (landmark heatmaps, style) are not upscalers
    landmarks = {m.name for m in shipped_models() if m.purpose == "landmarks"}
    assert landmarks and not landmarks & {n for n, _ in names}
    assert {("bicubic", s) for s in (2, 3, 4)} <= names
    assert body["limits"]["max_pixels"] == 300_000
    page = client.get("/")
    assert page.status_code == 200 and 'id="results"' in page.text
    assert client.get("/static/app.js").status_code == 200


def test_bad_input_gets_one_line_messages(client: TestClient, tmp_path: Path) -> None:
    good = png_bytes(np.full((40, 40, 3), 128, np.uint8), tmp_path)
    cases = [
        (post(client, b"hello, not a picture", "notes.txt"), 400, "notes.txt: not an image"),
        (post(client, b""), 400, "empty file"),
        (post(client, good, models="nope_x4"), 400, "unknown model 'nope_x4' at x4"),
        (post(client, good, models="repan_x2"), 400, "unknown model 'repan_x2' at x4"),
        (post(client, good, models=""), 400, "pick at least one model"),
        (post(client, good, models="bicubic,repan_x4,espcn_x4,srcnn_x4"), 400, "at most 3"),
        (post(client, good, scale="5"), 400, "scale x5 is not offered"),
        (post(client, good, scale="four"), 400, "not a number"),
        (post(client, good, mode="pair"), 400, "upload the HR image too"),
        (post(client, good, mode="pair", hr=good), 400, "must be 160x160"),
        (post(client, good, mode="degrade"), 400, "too small to score"),
        (post(client, good, mode="sideways"), 400, "unknown mode"),
    ]
    big = png_bytes(np.zeros((600, 600, 3), np.uint8), tmp_path, "big.png")
    cases.append((post(client, big, "big.png"), 400, "too large (600x600 = 360,000 pixels)"))
    noise = np.random.default_rng(0).integers(0, 256, (1100, 1100, 3), dtype=np.uint8)
    huge = png_bytes(noise, tmp_path, "huge.png")  # over 2 MiB
    cases.append((post(client, huge, "huge.png"), 413, "over this server's limit of 2 MiB"))
    for response, status, text in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert text in error and "\n" not in error and "Traceback" not in error
    missing = client.post("/api/jobs", data={"models": "bicubic"})
    assert missing.status_code == 400 and "choose an image" in missing.json()["error"]
    assert client.get("/api/jobs/0123456789abcdef").status_code == 404
    assert client.get("/nowhere").json() == {"error": "not found"}


def test_jobs_queue_and_run_one_at_a_time(client: TestClient, tmp_path: Path) -> None:
    image = png_bytes(np.random.default_rng(1).integers(0, 256, (48, 40, 3), np.uint8), tmp_path)
    ids = [post(client, image, models="bicubic,espcn_x4").json()["id"] for _ in range(3)]
    jobs = [wait_done(client, i) for i in ids]
    for job in jobs:
        assert job["state"] == "done" and [r["model"] for r in job["results"]] == [
            "bicubic",
            "espcn_x4",
        ]
    for earlier, later in zip(jobs, jobs[1:], strict=False):
        assert later["started"] >= earlier["finished"]  # never two at once
    result = jobs[0]["results"][1]
    assert (result["width"], result["height"]) == (160, 192) and "psnr" not in result
    png = client.get(result["url"])
    assert png.headers["content-type"] == "image/png"
    expected = Upscaler(resolve_model("espcn_x4", 4)).upscale_array(read_image(image).pixels)
    assert np.array_equal(read_image(png.content).pixels, expected)
    download = client.get(result["url"] + "?download=1")
    assert 'filename="a_x4_espcn_x4.png"' in download.headers["content-disposition"]
    assert client.get(result["url"].rsplit("/", 1)[0] + "/..%2Fjobs").status_code == 404


def test_scores_match_the_benchmark_in_both_modes(client: TestClient, tmp_path: Path) -> None:
    data = BUTTERFLY.read_bytes()
    degraded = wait_done(client, post(client, data, "butterfly.png", mode="degrade").json()["id"])
    sr, psnr, ssim = reference("bicubic")
    (entry,) = degraded["results"]
    assert entry["psnr"] == pytest.approx(psnr, abs=1e-4)
    assert entry["ssim"] == pytest.approx(ssim, abs=1e-5)
    assert np.array_equal(read_image(client.get(entry["url"]).content).pixels, sr)
    assert psnr == pytest.approx(22.10, abs=0.01)  # the published bicubic x4 butterfly figure
    # the same LR and HR uploaded as a pair give the same figures
    lr = read_image(client.get(degraded["inputs"]["input"]["url"]).content).pixels
    hr = read_image(client.get(degraded["inputs"]["hr"]["url"]).content).pixels
    pair = post(
        client,
        png_bytes(lr, tmp_path, "lr.png"),
        "lr.png",
        hr=png_bytes(hr, tmp_path, "hr.png"),
        mode="pair",
    )
    paired = wait_done(client, pair.json()["id"])
    assert paired["results"][0]["psnr"] == entry["psnr"]
    assert paired["results"][0]["ssim"] == entry["ssim"]


# --------------------------------------------------------------------------- the real server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``srkit serve`` in a child process, run from an empty folder with an empty TMPDIR."""

    def __init__(self, base: Path, *args: str) -> None:
        self.cwd, self.tmp = base / "cwd", base / "tmp"
        self.cwd.mkdir(parents=True)
        self.tmp.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TMPDIR": str(self.tmp)}
        src = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        command = [sys.executable, "-m", "srkit.cli", "serve", "--port", str(self.port), *args]
        self.process = subprocess.Popen(
            command, cwd=self.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        import httpx

        for _ in range(600):
            if self.process.poll() is not None:
                raise AssertionError(self.process.stdout.read().decode())
            try:
                httpx.get(self.url + "/api/models", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("srkit serve did not start within 60 s")

    def stop(self) -> str:
        self.process.terminate()
        try:
            output, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output.decode()


@pytest.fixture
def server(tmp_path: Path):
    process = ServerProcess(tmp_path)
    yield process
    process.stop()


def test_server_process_writes_only_inside_its_folder(server: ServerProcess) -> None:
    import httpx

    files = {"image": ("butterfly.png", io.BytesIO(BUTTERFLY.read_bytes()), "image/png")}
    fields = {"mode": "degrade", "scale": "4", "models": "bicubic,espcn_x4"}
    job_id = httpx.post(server.url + "/api/jobs", files=files, data=fields).json()["id"]
    for _ in range(1200):
        job = httpx.get(f"{server.url}/api/jobs/{job_id}").json()
        if job["state"] in ("done", "error"):
            break
        time.sleep(0.1)
    assert job["state"] == "done" and all("psnr" in r for r in job["results"])
    (folder,) = server.tmp.iterdir()  # everything lives in the server's own folder
    assert folder.name.startswith("srkit-serve-")
    assert sorted(p.name for p in (folder / "jobs" / job_id).iterdir()) == [
        "hr.png",
        "input.png",
        "sr_0_bicubic.png",
        "sr_1_espcn_x4.png",
    ]
    output = server.stop()
    assert "http://127.0.0.1:" in output and "Traceback" not in output
    assert list(server.tmp.iterdir()) == [] and list(server.cwd.iterdir()) == []
