"""The database: engine and sessions (database), and the tables (tables). Migrations live in migrations/."""
