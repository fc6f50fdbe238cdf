//! Fixture discovery and CSV loading shared by the domain tests.

use std::path::{Path, PathBuf};

/// `tests/fixtures` in the repository: the SPY 1-minute reference pair
/// (`SPY_1min.csv`, `SPY_1min.talib.csv`) and the generated pairs in `talib/`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The SPY 1-minute bars every TA-Lib reference starts from.
pub fn spy_bars() -> PathBuf {
    fixtures_dir().join("SPY_1min.csv")
}

/// Every `NAME.csv` with a `NAME.talib.csv` beside it: the SPY fixture, the committed
/// generated ones, and any in `TICKFLOW_EXTRA_FIXTURES` (`scripts/test` generates fresh
/// random series there on every run).
pub fn talib_fixtures() -> Vec<(PathBuf, PathBuf)> {
    assert!(
        spy_bars().exists(),
        "{} is missing: the TA-Lib reference fixture is part of the repository",
        spy_bars().display()
    );
    let mut dirs = vec![fixtures_dir(), fixtures_dir().join("talib")];
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
