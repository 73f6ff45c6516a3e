"""Render resources/workbench.svg to the PNG sizes desktops look for (offscreen Qt).

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python tools/make_icons.py
Writes resources/icons/workbench-N.png for each size in SIZES.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "workbench.svg"
OUT = ROOT / "resources" / "icons"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def render(svg: Path, size: int, target: Path) -> None:
    """Draw `svg` into a transparent `size`×`size` PNG at `target`."""
    from PySide6.QtCore import Qt  # noqa: TID251  (a tool that draws)
    from PySide6.QtGui import QImage, QPainter  # noqa: TID251  (a tool that draws)
    from PySide6.QtSvg import QSvgRenderer  # noqa: TID251  (a tool that draws)

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(target)):
        raise SystemExit(f"cannot write {target}")


def main() -> int:
    from PySide6.QtGui import QGuiApplication  # noqa: TID251  (a tool that draws)

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    OUT.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        render(SVG, size, OUT / f"workbench-{size}.png")
        print(f"wrote {OUT / f'workbench-{size}.png'}")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
