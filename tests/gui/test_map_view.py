"""The Map view on a fake session: hover, click, lasso, a query lighting up, colour by,
an empty library and one file, the first layout in the background, the keyboard, and the
File menu's way in (issue 17)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPalette, QPolygonF

from indexer.types import LibraryMap, MapCluster, MapPoint
from tests.support.gui_fakes import FakeMapSession, make_map

pytestmark = pytest.mark.gui


def _mouse(widget: Any, kind: QEvent.Type, pos: QPointF, *, button: Qt.MouseButton = Qt.MouseButton.LeftButton,
           held: bool = True, shift: bool = False) -> None:
    from PySide6.QtWidgets import QApplication

    buttons = Qt.MouseButton.LeftButton if held and kind != QEvent.Type.MouseButtonRelease else Qt.MouseButton.NoButton
    mods = Qt.KeyboardModifier.ShiftModifier if shift else Qt.KeyboardModifier.NoModifier
    ev = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, mods)
    QApplication.sendEvent(widget, ev)


def _loaded(qtbot: Any, view: Any, n: int) -> None:
    """Wait for the map's ``n`` points, then for the layout round them (the legend's strip
    takes its height), so the points are where a person would see them."""
    from PySide6.QtWidgets import QApplication

    qtbot.waitUntil(lambda: len(view.points) == n, timeout=5000)
    QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)


def _grid_map(side: int = 20) -> LibraryMap:
    """Points on a regular grid in [0, 1]², named by their place."""
    pts = [MapPoint(fid=f"g{r}-{c}", path=f"/lib/g{r}-{c}.txt", name=f"g{r}-{c}.txt", kind="text",
                    x=c / (side - 1), y=r / (side - 1), cluster=0 if c < side // 2 else 1, folder="/lib",
                    mtime=1_600_000_000.0 + r * 86400, ext=".txt", size=10)
           for r in range(side) for c in range(side)]
    clusters = [MapCluster(0, "west · left", 0.25, 0.5, side * side // 2), MapCluster(1, "east · right", 0.75, 0.5,
                                                                                      side * side // 2)]
    return LibraryMap(layer="documents", points=pts, clusters=clusters, built_at=1_700_000_000.0)


def _open(qtbot: Any, session: FakeMapSession, opened: list[tuple[str, str]] | None = None) -> Any:
    from desktop.map_view import MapView
    from desktop.opener import Opener

    log = opened if opened is not None else []
    opener = Opener(lambda: ["/lib", "/home/ada"], open_url=lambda url: log.append(("open", url.toLocalFile())) or True,
                    run=lambda argv: log.append(("run", argv[-1])), platform="linux")
    opener.check = lambda path: path  # type: ignore[method-assign]  # the fake files are not on disk
    view = MapView(session, opener, None)
    view.resize(1100, 720)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.start()
    return view


@pytest.fixture
def grid_view(qtbot: Any, no_leaks: None) -> Any:
    m = _grid_map()
    view = _open(qtbot, FakeMapSession(maps={"documents": m}, stored={"documents": m}))
    _loaded(qtbot, view, 400)
    yield view
    view.wait()


def _screen(view: Any, i: int) -> QPointF:
    x, y = view.canvas.to_screen(*view.canvas.xy[i])
    return QPointF(float(x), float(y))


def test_hovering_a_point_shows_its_name(grid_view: Any) -> None:
    canvas = grid_view.canvas
    i = grid_view.index_of["g3-7"]
    _mouse(canvas, QEvent.Type.MouseMove, _screen(grid_view, i) + QPointF(2, -1), button=Qt.MouseButton.NoButton,
           held=False)
    assert canvas.hover == i
    card = canvas.hover_card()
    assert card is not None and card.title == "g3-7.txt" and "/lib" in card.subtitle
    assert "g3-7.txt" in canvas.accessibleDescription()
    # Far from every point: nothing is hovered.
    _mouse(canvas, QEvent.Type.MouseMove, _screen(grid_view, i) + QPointF(0.5, 0.5) * (canvas.scale / 19),
           button=Qt.MouseButton.NoButton, held=False)
    assert canvas.hover == -1 and canvas.hover_card() is None


def test_clicking_a_point_shows_the_search_preview_and_double_click_opens(qtbot: Any, no_leaks: None) -> None:
    m = _grid_map()
    opened: list[tuple[str, str]] = []
    view = _open(qtbot, FakeMapSession(maps={"documents": m}, stored={"documents": m}), opened)
    _loaded(qtbot, view, 400)
    i = view.index_of["g10-4"]
    pos = _screen(view, i)
    _mouse(view.canvas, QEvent.Type.MouseButtonPress, pos)
    _mouse(view.canvas, QEvent.Type.MouseButtonRelease, pos)
    assert view.preview.title.text() == "g10-4.txt"  # at once, from what the map knows
    assert view.preview.path_label.text() == "/lib/g10-4.txt"
    # then the passage, as a search result's preview shows it
    qtbot.waitUntil(lambda: "passage of g10-4.txt" in view.preview.passage.toPlainText(), timeout=5000)
    assert view.open_button.isEnabled()
    _mouse(view.canvas, QEvent.Type.MouseButtonDblClick, pos)
    assert opened == [("open", "/lib/g10-4.txt")]
    view.wait()


def test_a_right_click_offers_open_show_in_folder_and_copy(grid_view: Any, qtbot: Any) -> None:
    from PySide6.QtGui import QGuiApplication

    canvas = grid_view.canvas
    canvas.menuRequested.disconnect(grid_view._menu)  # the menu itself would wait for a person
    i = grid_view.index_of["g5-5"]
    with qtbot.waitSignal(canvas.menuRequested, timeout=2000) as got:
        _mouse(canvas, QEvent.Type.MouseButtonPress, _screen(grid_view, i), button=Qt.MouseButton.RightButton,
               held=False)
    assert got.args[0] == i and canvas.current == i
    actions = {a.text(): a for a in grid_view.menu_actions(grid_view.points[i].path)}
    assert list(actions) == ["Open", "Show in folder", "Copy path"]
    actions["Copy path"].trigger()
    assert QGuiApplication.clipboard().text() == "/lib/g5-5.txt"


def test_the_lasso_lists_exactly_the_points_inside(grid_view: Any) -> None:
    canvas = grid_view.canvas
    # A concave polygon (an arrowhead) over the grid, at no point's exact coordinates.
    corners = [(0.13, 0.11), (0.83, 0.27), (0.41, 0.43), (0.79, 0.86), (0.18, 0.71)]
    screen = [QPointF(*(float(v) + 0.37 for v in canvas.to_screen(x, y))) for x, y in corners]
    _mouse(canvas, QEvent.Type.MouseButtonPress, screen[0], shift=True)
    for p in screen[1:] + [screen[0]]:
        _mouse(canvas, QEvent.Type.MouseMove, p, button=Qt.MouseButton.NoButton)
    _mouse(canvas, QEvent.Type.MouseButtonRelease, screen[0])
    poly = QPolygonF(screen)
    expected = sorted(p.name for i, p in enumerate(grid_view.points)
                      if poly.containsPoint(_screen(grid_view, i), Qt.FillRule.OddEvenFill))
    listed = sorted(grid_view.file_list.item(r).text() for r in range(grid_view.file_list.count()))
    assert 40 < len(expected) < 250
    assert listed == expected
    assert grid_view.list_title.text().startswith(f"{len(expected)} files inside the lasso")
    # Escape clears it
    canvas.setFocus()
    from PySide6.QtTest import QTest

    QTest.keyClick(canvas, Qt.Key.Key_Escape)
    assert grid_view.file_list.count() == 0 and len(canvas.selection) == 0
    # so does Clear, after another lasso
    _mouse(canvas, QEvent.Type.MouseButtonPress, screen[0], shift=True)
    for p in screen[1:3]:
        _mouse(canvas, QEvent.Type.MouseMove, p, button=Qt.MouseButton.NoButton)
    _mouse(canvas, QEvent.Type.MouseButtonRelease, screen[0])
    assert grid_view.file_list.count() > 0 and grid_view.clear_list_button.isEnabled()
    grid_view.clear_list_button.click()
    assert grid_view.file_list.count() == 0 and len(canvas.selection) == 0


def test_point_grid_inside_agrees_with_qt_on_random_points() -> None:
    from desktop.map_canvas import PointGrid

    rng = np.random.default_rng(3)
    xy = rng.normal(size=(5000, 2))
    star = [(np.cos(t) * (1.6 if k % 2 else 0.6), np.sin(t) * (1.6 if k % 2 else 0.6))
            for k, t in enumerate(np.linspace(0, 2 * np.pi, 11)[:-1])]
    got = PointGrid(xy).inside(np.array(star))
    poly = QPolygonF([QPointF(float(x), float(y)) for x, y in star])
    want = [i for i, (x, y) in enumerate(xy) if poly.containsPoint(QPointF(float(x), float(y)), Qt.FillRule.OddEvenFill)]
    assert got.tolist() == want and len(want) > 500
    grid = PointGrid(xy)
    for x, y in rng.normal(size=(50, 2)):
        d = np.hypot(xy[:, 0] - x, xy[:, 1] - y)
        assert grid.nearest(x, y, 0.2) == (int(np.argmin(d)) if d.min() <= 0.2 else -1)


def _pixel(view: Any, i: int) -> QColor:
    image = view.canvas.grab().toImage()
    p = _screen(view, i).toPoint()
    return image.pixelColor(p.x(), p.y())


def test_a_query_lights_up_its_results_and_dims_the_rest(qtbot: Any, no_leaks: None) -> None:
    m = make_map(n=600, seed=5)
    session = FakeMapSession(maps={"documents": m}, stored={"documents": m})
    view = _open(qtbot, session)
    _loaded(qtbot, view, 600)
    hits = {p.fid for p in view.points if "roadmap" in p.name}
    assert hits
    lit_xy = np.array([(p.x, p.y) for p in view.points if p.fid in hits])
    # a file far from every result, to look at its pixel before and after
    far = max((i for i, p in enumerate(view.points) if p.fid not in hits),
              key=lambda i: np.hypot(*(lit_xy - view.canvas.xy[i]).T).min())
    before = _pixel(view, far)
    qtbot.keyClicks(view.query, "roadmap")
    qtbot.waitUntil(lambda: view.canvas.highlight is not None, timeout=5000)
    mask = view.canvas.highlight
    assert {view.points[i].fid for i in np.flatnonzero(mask)} == hits
    assert session.queries == [("roadmap", "documents")]
    assert "lit up" in view.status.text()
    assert view.canvas.visible_labels()[0] == "meeting · roadmap · project"  # where the answers live, named first
    after = _pixel(view, far)
    base = view.canvas.palette().color(QPalette.ColorRole.Base)

    def distance(a: QColor, b: QColor) -> int:
        return abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue())

    assert distance(after, base) < distance(before, base) / 2  # dimmed towards the background
    view.query.clear()
    qtbot.waitUntil(lambda: view.canvas.highlight is None, timeout=5000)
    view.wait()


def test_colour_by_switches_the_colours_and_the_legend(grid_view: Any) -> None:
    legend = [t for _c, t in grid_view.legend.entries()]
    assert legend == ["west · left (200)", "east · right (200)"]
    by_region = grid_view.canvas.color_index.copy()
    grid_view.color_by.setCurrentIndex(grid_view.color_by.findData("date"))
    assert grid_view.legend.coloring.ramp is not None
    assert len(set(grid_view.canvas.color_index.tolist())) > 5  # rows of the grid differ in date
    assert not np.array_equal(by_region, grid_view.canvas.color_index)
    grid_view.color_by.setCurrentIndex(grid_view.color_by.findData("type"))
    assert [t for _c, t in grid_view.legend.entries()] == ["Plain text (400)"]
    assert set(grid_view.canvas.color_index.tolist()) == {0}


def test_an_empty_library_says_so(qtbot: Any, no_leaks: None) -> None:
    empty = LibraryMap(layer="documents", message="Nothing is indexed yet: add a folder to see its map.")
    view = _open(qtbot, FakeMapSession(stored={"documents": empty}))
    qtbot.waitUntil(lambda: view.stack.currentWidget() is view.empty, timeout=5000)
    qtbot.waitUntil(lambda: view.empty.title.text() == "No documents to map yet", timeout=5000)
    assert view.empty.text.text() == empty.message
    assert not view.relayout_button.isEnabled()
    view.wait()


def test_one_file_sits_in_the_middle_with_a_note(qtbot: Any, no_leaks: None) -> None:
    one = LibraryMap(layer="documents", points=[MapPoint("f1", "/lib/only.md", "only.md", "text", 0.5, 0.5, -1)])
    view = _open(qtbot, FakeMapSession(stored={"documents": one}))
    _loaded(qtbot, view, 1)
    assert view.stack.currentWidget() is view.canvas
    pos = _screen(view, 0)
    assert abs(pos.x() - view.canvas.width() / 2) < 1 and abs(pos.y() - view.canvas.height() / 2) < 1
    assert view.status.text().startswith("Only one document so far")
    assert view.summary.text() == "1 document"
    assert view.preview.title.text() == "only.md"
    view.wait()


def test_the_first_open_lays_the_map_out_in_the_background(qtbot: Any, no_leaks: None) -> None:
    m = make_map(n=300)
    session = FakeMapSession(maps={"documents": m})  # nothing stored: never built
    session.gate = threading.Event()
    view = _open(qtbot, session)
    qtbot.waitUntil(lambda: view.empty.title.text() == "Laying out your documents…", timeout=5000)
    qtbot.waitUntil(lambda: view.empty.text.text() == "Reading the vectors…", timeout=5000)
    assert view.empty.progress.isVisible() and view.empty.progress.value() == 200
    assert not view.relayout_button.isEnabled()
    session.gate.set()
    _loaded(qtbot, view, 300)
    assert view.stack.currentWidget() is view.canvas
    assert threading.main_thread().name not in session.threads
    assert session.builds == [("documents", False)]
    qtbot.waitUntil(view.relayout_button.isEnabled, timeout=5000)
    view.wait()


def test_a_stale_map_is_shown_and_brought_up_to_date(qtbot: Any, no_leaks: None) -> None:
    old = make_map(n=200, seed=1)
    old.stale = True
    new = make_map(n=260, seed=1)
    view = _open(qtbot, FakeMapSession(maps={"documents": new}, stored={"documents": old}))
    _loaded(qtbot, view, 260)
    view.wait()


def test_files_arriving_while_the_map_is_open_are_placed_on_it(qtbot: Any, no_leaks: None) -> None:
    from indexer.types import Progress

    old, new = make_map(n=200, seed=1), make_map(n=230, seed=1)
    session = FakeMapSession(maps={"documents": new}, stored={"documents": old})
    view = _open(qtbot, session)
    _loaded(qtbot, view, 200)
    view._follow.setInterval(20)
    view.index_changed(Progress("embedding", done=1, total=2))  # no commit yet: nothing to do
    view.index_changed(Progress("embedding", done=2, total=2, index_changed=True))
    _loaded(qtbot, view, 230)
    assert session.builds == [("documents", False)]
    view.wait()


def test_the_images_layer_is_its_own_map(qtbot: Any, no_leaks: None) -> None:
    docs, images = make_map(n=200, seed=1), make_map(n=90, seed=2, layer="images")
    session = FakeMapSession(stored={"documents": docs, "images": images})
    view = _open(qtbot, session)
    _loaded(qtbot, view, 200)
    view.layer_buttons["images"].click()
    _loaded(qtbot, view, 90)
    assert view.summary.text().startswith("90 pictures")
    assert view.points[0].kind == "image"
    view.wait()


def test_the_other_layer_opens_while_one_is_being_laid_out(qtbot: Any, no_leaks: None) -> None:
    docs, images = make_map(n=120, seed=1), make_map(n=70, seed=2, layer="images")
    session = FakeMapSession(maps={"documents": docs}, stored={"images": images})
    session.gate = threading.Event()
    view = _open(qtbot, session)
    qtbot.waitUntil(lambda: view.empty.title.text() == "Laying out your documents…", timeout=5000)
    view.layer_buttons["images"].click()
    _loaded(qtbot, view, 70)  # not queued behind the layout
    session.gate.set()
    qtbot.waitUntil(lambda: "documents" in view.maps, timeout=5000)
    assert len(view.points) == 70  # the finished layout does not take the screen from the other layer
    view.layer_buttons["documents"].click()
    _loaded(qtbot, view, 120)
    view.wait()


def test_keys_pan_and_zoom_and_controls_have_names(grid_view: Any, qtbot: Any) -> None:
    from PySide6.QtTest import QTest

    canvas = grid_view.canvas
    canvas.setFocus()
    center, scale = canvas.center.copy(), canvas.scale
    QTest.keyClick(canvas, Qt.Key.Key_Right)
    assert canvas.center[0] > center[0] and canvas.center[1] == center[1]
    QTest.keyClick(canvas, Qt.Key.Key_Plus)
    assert canvas.scale == pytest.approx(scale * 1.25)
    QTest.keyClick(canvas, Qt.Key.Key_Minus)
    QTest.keyClick(canvas, Qt.Key.Key_Minus)
    assert canvas.scale == pytest.approx(scale / 1.25)
    QTest.keyClick(canvas, Qt.Key.Key_0)
    assert canvas.scale == pytest.approx(scale) and np.allclose(canvas.center, center)
    # Space picks the file nearest the cross in the middle, shows its card and preview; Enter opens it
    QTest.keyClick(canvas, Qt.Key.Key_Up)
    QTest.keyClick(canvas, Qt.Key.Key_Space)
    d = np.hypot(*(canvas.xy - canvas.center).T)
    assert canvas.current >= 0 and d[canvas.current] == pytest.approx(d.min())
    name = grid_view.points[canvas.current].name
    assert canvas.hover_card().title == name and grid_view.preview.title.text() == name
    assert name in canvas.accessibleDescription()
    for w in (grid_view.layer_buttons["documents"], grid_view.layer_buttons["images"], grid_view.query,
              grid_view.color_by, grid_view.lasso_button, grid_view.fit_button, grid_view.relayout_button, canvas,
              grid_view.file_list, grid_view.legend):
        assert w.accessibleName()
    # Tab reaches the map from the controls, and goes on to the lasso's list.
    grid_view.activateWindow()
    grid_view.relayout_button.setFocus()
    QTest.keyClick(grid_view.relayout_button, Qt.Key.Key_Tab)
    qtbot.waitUntil(canvas.hasFocus, timeout=2000)


def test_panning_moves_the_cached_image_and_a_pause_centres_it_again(grid_view: Any, qtbot: Any) -> None:
    canvas = grid_view.canvas
    canvas.repaint()
    first = canvas._cache
    assert first is not None
    canvas.pan_by(canvas.width() * 0.2, 0)
    canvas.repaint()
    assert canvas._cache is first  # a short drag only moves the image
    canvas.pan_by(canvas.width() * 0.25, 0)  # now more than half the margin is used
    canvas.repaint()
    assert canvas._cache is first
    qtbot.waitUntil(lambda: canvas._cache is not None and canvas._cache is not first, timeout=3000)
    target = canvas._cache_target(canvas._cache)
    assert abs(target.center().x() - canvas.width() / 2) < 1  # centred round the view again


def test_a_large_map_is_drawn_on_the_drawing_thread_meanwhile_the_old_image_shows(grid_view: Any, qtbot: Any) -> None:
    canvas = grid_view.canvas
    canvas.sync_points = 0  # as a map of more than SYNC_POINTS files is
    canvas.repaint()
    before = canvas._cache
    mask = np.zeros(len(canvas.xy), dtype=bool)
    mask[:40] = True
    canvas.set_highlight(mask)
    canvas.repaint()  # does not wait for the drawing: the old image is shown meanwhile
    assert canvas._cache is before
    qtbot.waitUntil(lambda: canvas._cache is not before and canvas._cache.generation == canvas._generation,
                    timeout=5000)
    assert canvas._drawing is None or canvas._pool.active() <= 1


def test_wheel_zooms_about_the_pointer(grid_view: Any) -> None:
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    canvas = grid_view.canvas
    anchor = QPointF(200.5, 150.5)
    before = canvas.to_world(anchor.x(), anchor.y())
    ev = QWheelEvent(anchor, canvas.mapToGlobal(anchor), QPoint(0, 0), QPoint(0, 240), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, ev)
    assert canvas.zoom() == pytest.approx(1.25 ** 2)
    assert canvas.to_world(anchor.x(), anchor.y()) == pytest.approx(before)


def test_labels_show_when_they_fit_and_never_overlap(qtbot: Any, no_leaks: None) -> None:
    m = make_map(n=800, seed=9)
    view = _open(qtbot, FakeMapSession(stored={"documents": m}))
    _loaded(qtbot, view, 800)
    canvas = view.canvas
    shown = canvas.visible_labels()
    level0 = {c.label for c in m.clusters if c.level == 0}
    assert shown and set(shown) <= level0
    rects = [r for _l, r in canvas.placed]
    assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
    deeper = set()
    for c in (c for c in m.clusters if c.level == 1):  # smaller regions are named when zoomed in
        canvas.center, canvas.scale, canvas.fitted = np.array([c.x, c.y]), canvas.fit_scale * 4, False
        canvas.invalidate()
        deeper.update(canvas.visible_labels())
    assert any(c.level == 1 and c.label in deeper for c in m.clusters)
    view.wait()


def test_the_file_menu_opens_the_map(window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    session = window.backend.session
    m = make_map(n=150)
    monkeypatch.setattr(session, "load_map", lambda layer: m)
    action = next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Map…")
    assert action.shortcut().toString() == "Ctrl+M"
    action.trigger()
    from desktop.map_view import MapView

    dlg = next(w for w in window.findChildren(MapView))
    qtbot.waitUntil(lambda: len(dlg.points) == 150, timeout=5000)
    dlg.close()


def test_colour_schemes_name_their_groups() -> None:
    from desktop import map_colors

    folders = ["/home/ada/Documents/Work/2023", "/home/ada/Documents/Work", "/home/ada/Documents/Taxes", ""]
    assert map_colors.folder_groups(folders) == ["Work", "Work", "Taxes", ""]
    assert [map_colors.type_name(p) for p in ("a.PDF", ".md", "notes", ".heic", "x.weird")] == \
        ["PDF", "Markdown", "No extension", "HEIC", "WEIRD"]
    t = map_colors.by_type([".pdf", ".pdf", ".md", ".py"] + [f".x{i}" for i in range(12)])
    assert t.legend[0] == (map_colors.QUALITATIVE[0], "PDF", 2)
    # ten named groups (PDF, Markdown, Code and seven of the odd ones) hold 11 files; 5 are "other"
    assert len(t.legend) == map_colors.MAX_GROUPS + 1 and t.legend[-1][1:] == ("Other types", 5)
    regions = map_colors.by_region([3, 3, 3, 1, -1], {3: "taxes · invoice", 1: "bread"})
    assert [row[1:] for row in regions.legend] == [("taxes · invoice", 3), ("bread", 1), ("In no region", 1)]
    assert regions.index.tolist() == [0, 0, 0, 1, 2] and regions.colors[2] == map_colors.OTHER
    days = map_colors.by_date(np.array([0.0] + [1.6e9 + i * 86400 for i in range(100)]))
    assert days.index[0] == 0 and days.index[-1] == len(map_colors.RAMP) - 1  # one odd date does not squash the rest
    assert len(set(days.index[1:].tolist())) == len(map_colors.RAMP)
