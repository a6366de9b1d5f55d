-- relais schema: see 0002 onwards
CREATE TABLE IF NOT EXISTS relais_meta(key text primary key, value text not null);
