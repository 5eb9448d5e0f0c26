"""Training: the trainer (:mod:`.trainer`), the task interface (:mod:`.task`) and the tasks
(:mod:`.tasks`), stage configs (:mod:`.config`, :mod:`.experiment`), recipes (:mod:`.recipe`)
and shipping a result into the zoo (:mod:`.ship`)."""
