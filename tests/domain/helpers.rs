//! Fixture discovery and CSV loading shared by the domain tests.

use std::path::{Path, PathBuf};

/// `../shared/reference` beside the repository, or `TICKFLOW_REFERENCE_DIR`.
pub fn reference_dir() -> PathBuf {
    std::env::var_os("TICKFLOW_REFERENCE_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"),
        PathBuf::from,
    )
}

/// Every `NAME.csv` with a `NAME.talib.csv` beside it: the shared SPY fixture, the
/// committed generated ones, and any in `TICKFLOW_EXTRA_FIXTURES` (CI generates fresh
/// random series there on every run).
pub fn talib_fixtures() -> Vec<(PathBuf, PathBuf)> {
    let spy = reference_dir().join("data/SPY_1min.csv");
    assert!(
        spy.exists(),
        "{} is missing: the TA-Lib reference fixture must be present (set TICKFLOW_REFERENCE_DIR)",
        spy.display()
    );
    let mut dirs = vec![
        reference_dir().join("data"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/talib"),
    ];
    if let Some(extra) = std::env::var_os("TICKFLOW_EXTRA_FIXTURES") {
        dirs.push(PathBuf::from(extra));
    }
    let mut pairs = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            panic!("fixture directory {} is unreadable", dir.display());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".csv")
                && !stem.ends_with(".talib")
            {
                let reference = dir.join(format!("{stem}.talib.csv"));
                if reference.exists() {
                    pairs.push((path, reference));
                }
            }
        }
    }
    pairs.sort();
    pairs
}

/// A CSV file as its header and rows of raw cells.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// An empty cell as `None`, anything else as a number.
pub fn opt(cell: &str) -> Option<f64> {
    (!cell.is_empty()).then(|| {
        cell.parse()
            .unwrap_or_else(|_| panic!("bad number {cell:?}"))
    })
}
