"""The Qt window. The only package that imports Qt.

`app` builds it (QApplication → library session → `backend.Backend`, the Qt adapter
over the session, and `search_controller.SearchController` → `main_window.MainWindow`);
the rest are widgets, views and dialogs, one module each (`duplicates_view` is the
pattern for a new view), with `workers` running core calls off the GUI thread.

Imports from the core only: indexer.library.session, indexer.types, indexer.errors,
indexer.wording (tests/unit/test_import_rules.py). What a new view needs from the
index is a method on `LibrarySession`.
"""
