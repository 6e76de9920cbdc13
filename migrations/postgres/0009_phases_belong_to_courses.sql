-- Phases belong to each course: course.toml declares them as an ordered [[phases]] array,
-- and a lesson revision stores the name its course gave. Databases made before this had a
-- CHECK on lesson_revisions.phase naming one course's phases: it goes.

ALTER TABLE lesson_revisions DROP CONSTRAINT IF EXISTS lesson_revisions_phase_check;

-- courses.phases was a JSON object (phase name -> description) whose order was compiled
-- into drip. It becomes the ordered array the course declares. The order is recovered from
-- the lessons themselves (each phase where its first lesson stands); the title is the name
-- until the next sync of course.toml, which drip runs at start-up, writes the real one.
UPDATE courses SET phases = COALESCE((
    SELECT json_agg(json_build_object(
               'name', p.name,
               'title', p.name,
               'description', COALESCE(courses.phases::json ->> p.name, ''))
           ORDER BY p.first)::text
    FROM (
        SELECT r.phase AS name, MIN(l.position) AS first
        FROM lessons l
        JOIN lesson_revisions r ON r.lesson_id = l.id AND r.revision = l.current_revision
        WHERE l.course_id = courses.id
        GROUP BY r.phase
    ) p
), '[]')
WHERE json_typeof(phases::json) = 'object';
