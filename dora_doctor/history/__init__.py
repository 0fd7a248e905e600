"""The history of real stops, kept in an embedded SQLite database: every command that sees a
shutdown adds it, so a grace can be learned from the stops that happened, not from rehearsals
alone. ``store`` owns the file and its schema, ``entries`` turns a diagnosis into rows, and
``summary`` reads them back per node."""
