//! `NamedValues`: a fixed set of named, possibly undefined, indicator outputs.

/// Indicator outputs in a fixed order with their published names; `None` where a value is
/// undefined (still warming up, or no meaningful value, as each producer documents).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NamedValues<const N: usize> {
    names: &'static [&'static str; N],
    values: [Option<f64>; N],
}

impl<const N: usize> NamedValues<N> {
    /// All values undefined.
    pub const fn empty(names: &'static [&'static str; N]) -> Self {
        Self {
            names,
            values: [None; N],
        }
    }

    /// The value of `name`; `None` for an unknown name or an undefined value.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.names
            .iter()
            .position(|n| *n == name)
            .and_then(|i| self.values[i])
    }

    /// `(name, value)` pairs in publication order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Option<f64>)> + '_ {
        self.names.iter().copied().zip(self.values.iter().copied())
    }

    /// The names, in publication order.
    pub fn names(&self) -> &'static [&'static str; N] {
        self.names
    }

    /// The values, in publication order.
    pub fn as_array(&self) -> &[Option<f64>; N] {
        &self.values
    }

    pub(crate) fn set_all(&mut self, values: [Option<f64>; N]) {
        self.values = values;
    }
}
