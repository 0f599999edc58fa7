//! The machinery that lets each config key be written once. A section is declared
//! with `section!` (or `rule!` for `[PREFIX.NAME]` sections), one line per key:
//!
//! ```text
//! interval: Duration = "10s", TimeIn("10ms", "24h"), "Time between cycles.";
//! ```
//!
//! naming the field and its type, the default as a user would write it, the kind of
//! value (how it is read, with its range and message, and printed back) and a
//! one-line description. From that line come the typed struct field, its default,
//! and the section's entry in the key table, which parsing, "did you mean" hints,
//! the printed configuration (`--check-config`, a reload's changed keys) and the
//! key reference (`config::reference`) all read.

/// A key's value as written on its line.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    /// The key as the file spells it (which is the declared name, once it matched).
    pub key: &'a str,
    /// As rust-ini reads it: a leading quoted part unquoted, an inline comment cut.
    pub value: &'a str,
    /// As written after the `=`, quotes and comment included (for command lines).
    pub raw: &'a str,
}

/// A kind of value: how a key's text becomes a `T` (or the exact message an
/// operator sees after `FILE:LINE: section.key: `), and how a `T` prints back as
/// text that reads to the same `T`.
pub trait Kind<T> {
    /// The printed text is a command line with its own quotes: it is written as it
    /// is, never quoted as a whole.
    const VERBATIM: bool = false;

    fn read(&self, w: Written) -> Result<T, String>;

    fn print(&self, v: &T) -> String;
}

/// One key of a section whose typed form is `T`.
pub struct Key<T: 'static> {
    pub name: &'static str,
    /// As a user would write it; empty: unset (an empty list, no value).
    pub default: &'static str,
    /// One line, for the key reference.
    pub doc: &'static str,
    /// See `Kind::VERBATIM`.
    pub verbatim: bool,
    /// Reads the value into its field of `T`.
    pub read: fn(&mut T, Written) -> Result<(), String>,
    /// The field's value as text.
    pub print: fn(&T) -> String,
}

/// A section's typed form and its keys, in file order.
pub trait Section: Sized + 'static {
    /// `agent` for `[agent]`; `cleanup` for `[cleanup.NAME]`.
    const NAME: &'static str;
    const KEYS: &'static [Key<Self>];
    /// The names of `KEYS`, in the same order.
    const NAMES: &'static [&'static str];
}

/// A section that comes once per rule, as `[PREFIX.NAME]`.
pub trait Rule: Section {
    /// The rule `name` with every key at its default.
    fn named(name: &str) -> Self;
}

impl<T> Key<T> {
    pub fn find(keys: &'static [Key<T>], name: &str) -> Option<&'static Key<T>> {
        keys.iter().find(|k| k.name == name)
    }
}

/// `kind.read`, with the target type named (for the declarations).
pub fn read_as<T, K: Kind<T>>(kind: &K, w: Written) -> Result<T, String> {
    kind.read(w)
}

/// `K::VERBATIM`, with the target type named (for the declarations).
pub const fn verbatim<T, K: Kind<T>>(_: &K) -> bool {
    K::VERBATIM
}

/// A declared default, read as the file would read it. A default that does not
/// read is a mistake in the declarations, which the table's own tests catch.
pub fn read_default<T, K: Kind<T>>(kind: &K, key: &str, text: &str) -> T {
    let w = Written {
        key,
        value: text,
        raw: text,
    };
    match kind.read(w) {
        Ok(v) => v,
        Err(why) => panic!("the declared default of {key} ({text:?}) does not read: {why}"),
    }
}

/// A field's default: unset (`""`: the type's empty value) or the declared text.
macro_rules! initial {
    (""; $ty:ty, $kind:expr, $key:expr) => {
        <$ty as ::std::default::Default>::default()
    };
    ($default:literal; $ty:ty, $kind:expr, $key:expr) => {
        $crate::config::table::read_default::<$ty, _>(&$kind, $key, $default)
    };
}

/// The name a field is written as: its own, or the one after `as`.
macro_rules! key_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident $name:literal) => {
        $name
    };
}

/// One entry of a key table: `$($path).+` is the field it reads and prints.
macro_rules! key {
    ($S:ty, $name:expr, $ty:ty, $default:tt, $kind:expr, $doc:expr, $($path:ident).+) => {
        $crate::config::table::Key::<$S> {
            name: $name,
            default: $default,
            doc: $doc,
            verbatim: $crate::config::table::verbatim::<$ty, _>(&$kind),
            read: |s: &mut $S, w| {
                s.$($path).+ = $crate::config::table::read_as::<$ty, _>(&$kind, w)?;
                Ok(())
            },
            print: |s: &$S| $crate::config::table::Kind::<$ty>::print(&$kind, &s.$($path).+),
        }
    };
}

/// A fixed section (`[agent]`): the struct, its `Default` and its key table.
/// `limits { cpu = "80", "90", KIND, "what is judged"; }` before the other keys
/// declares warn/crit pairs (a `Limits` field `cpu`, keys `cpu_warn` and `cpu_crit`).
macro_rules! section {
    (
        @build ($(#[$meta:meta])*) $S:ident $section:ident
        [$($lim:ident = $warn:tt, $crit:tt, $lkind:expr, $ldoc:literal;)*]
        [$($field:ident $(as $name:literal)?: $ty:ty = $default:tt, $kind:expr, $doc:literal;)*]
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $S {
            $(
                #[doc = concat!("Warn and crit levels of ", $ldoc)]
                pub $lim: $crate::config::Limits,
            )*
            $(#[doc = $doc] pub $field: $ty,)*
        }

        impl Default for $S {
            fn default() -> $S {
                $S {
                    $($lim: $crate::config::Limits {
                        warn: initial!(
                            $warn; Option<f64>, $lkind, concat!(stringify!($lim), "_warn")
                        ),
                        crit: initial!(
                            $crit; Option<f64>, $lkind, concat!(stringify!($lim), "_crit")
                        ),
                    },)*
                    $($field: initial!($default; $ty, $kind, key_name!($field $($name)?)),)*
                }
            }
        }

        impl $crate::config::table::Section for $S {
            const NAME: &'static str = stringify!($section);
            const KEYS: &'static [$crate::config::table::Key<$S>] = &[
                $(
                    key!($S, concat!(stringify!($lim), "_warn"), Option<f64>, $warn, $lkind,
                        concat!("Warn level of ", $ldoc), $lim.warn),
                    key!($S, concat!(stringify!($lim), "_crit"), Option<f64>, $crit, $lkind,
                        concat!("Crit level of ", $ldoc), $lim.crit),
                )*
                $(key!($S, key_name!($field $($name)?), $ty, $default, $kind, $doc, $field),)*
            ];
            const NAMES: &'static [&'static str] = &[
                $(concat!(stringify!($lim), "_warn"), concat!(stringify!($lim), "_crit"),)*
                $(key_name!($field $($name)?),)*
            ];
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $S:ident in [$section:ident] {
            limits { $($lim:ident = $warn:tt, $crit:tt, $lkind:expr, $ldoc:literal;)* }
            $($fields:tt)*
        }
    ) => {
        section!(
            @build ($(#[$meta])*) $S $section
            [$($lim = $warn, $crit, $lkind, $ldoc;)*] [$($fields)*]
        );

        impl $S {
            /// Each warn/crit pair: its two keys and its levels, in file order.
            pub fn limits(
                &self,
            ) -> [(&'static str, &'static str, $crate::config::Limits);
                [$(stringify!($lim)),*].len()]
            {
                [$((
                    concat!(stringify!($lim), "_warn"),
                    concat!(stringify!($lim), "_crit"),
                    self.$lim,
                )),*]
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub struct $S:ident in [$section:ident] { $($fields:tt)* }
    ) => {
        section!(@build ($(#[$meta])*) $S $section [] [$($fields)*]);
    };
}

/// A rule section (`[cleanup.NAME]`): as `section!`, with a `name` field first and
/// `Rule::named` in place of `Default`.
macro_rules! rule {
    (
        $(#[$meta:meta])*
        pub struct $S:ident in [$prefix:ident . NAME] {
            $($field:ident $(as $name:literal)?: $ty:ty = $default:tt, $kind:expr, $doc:literal;)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $S {
            /// The rule's name (`NAME`): letters, digits, `_`, `-`, `.`; it appears in events.
            pub name: String,
            $(#[doc = $doc] pub $field: $ty,)*
        }

        impl $crate::config::table::Rule for $S {
            fn named(name: &str) -> $S {
                $S {
                    name: name.to_string(),
                    $($field: initial!($default; $ty, $kind, key_name!($field $($name)?)),)*
                }
            }
        }

        impl $crate::config::table::Section for $S {
            const NAME: &'static str = stringify!($prefix);
            const KEYS: &'static [$crate::config::table::Key<$S>] = &[
                $(key!($S, key_name!($field $($name)?), $ty, $default, $kind, $doc, $field),)*
            ];
            const NAMES: &'static [&'static str] = &[$(key_name!($field $($name)?),)*];
        }
    };
}

pub(super) use {initial, key, key_name, rule, section};
