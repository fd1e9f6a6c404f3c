-- a scan shows the member's name (own union's members) and union in words
CREATE TABLE scanner_unions (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL
) STRICT;
CREATE TABLE scanner_roster (
    member_id INTEGER PRIMARY KEY,
    name      TEXT NOT NULL
) STRICT;
