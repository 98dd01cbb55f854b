package workermod_test

// The teardown tests run a real SQLite pool; sqlmod imports no driver.
import _ "modernc.org/sqlite"
