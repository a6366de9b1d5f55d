-- Irritants leave out customers' requests for a person (channel mechanics, not irritants): the classifier's
-- flag is kept with each verbatim from now on. Older rows carry the classifier's human intent instead.
ALTER TABLE kpi_verbatims ADD COLUMN asks_for_human boolean NOT NULL DEFAULT false;
