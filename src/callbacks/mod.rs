//! Callback tasks: number normalization, SLA deadlines, task rules. Pure, no I/O.
