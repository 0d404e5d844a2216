-- 0002_bounded_search_index.sql - the full-text index covers a bounded part of each article.
--
-- A tsvector holds at most 1 MiB (1 048 575 bytes), and the one of 0001 covered the whole
-- content: an accepted 0.96 MB article of distinct words failed to insert with "string is too
-- long for tsvector" (a 500 then). The index now covers the title and the first 100 000
-- characters of the content: at most about 400 kB of text, whose tsvector stays well under the
-- limit whatever the words, so every article the API accepts (content up to 1 MiB) can be
-- stored. Retrieval ranks on that part; the whole content is still stored and returned.
--
-- A generated column's expression cannot be altered in place: drop and re-add it (this rewrites
-- knowledge_articles once), then rebuild the GIN index.

ALTER TABLE knowledge_articles DROP COLUMN search_vector;
ALTER TABLE knowledge_articles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
  setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
  setweight(to_tsvector('english', left(coalesce(content, ''), 100000)), 'B')) STORED;
CREATE INDEX knowledge_articles_search_idx ON knowledge_articles USING gin (search_vector);
