-- why the server refused a check-in made here (a stable error code), shown in the scanner's log
ALTER TABLE checkins ADD COLUMN refused TEXT;
