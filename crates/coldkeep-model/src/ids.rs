//! Identities: every id is its own type, never a bare integer in a signature.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! counter_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(u64);

        impl $name {
            pub const fn new(n: u64) -> Self {
                Self(n)
            }
            pub const fn get(self) -> u64 {
                self.0
            }
            /// The catalog key: big-endian so that keys sort in id order.
            pub fn key(self) -> [u8; 8] {
                self.0.to_be_bytes()
            }
            /// The id a catalog key encodes, if it is one.
            pub fn from_key(key: &[u8]) -> Option<Self> {
                key.try_into().ok().map(|k| Self(u64::from_be_bytes(k)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

counter_id!(
    /// A snapshot: one committed backup of one object. Allocated in increasing order.
    SnapshotId
);
counter_id!(
    /// A protection policy.
    PolicyId
);
counter_id!(
    /// A protection group.
    GroupId
);
counter_id!(
    /// A run of a protection group.
    RunId
);
counter_id!(
    /// A protected object (a directory tree, a log directory or a disk image).
    ObjectId
);
counter_id!(
    /// A recovery task.
    RecoveryId
);
counter_id!(
    /// A registered source.
    SourceId
);

/// Who asks for a change: recorded in the audit log, and checked by the rules that need a right.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    pub name: String,
    /// May reduce or remove an Administrative DataLock (the seed's "DataLock admin").
    pub may_unlock_administrative: bool,
    /// May place or lift a legal hold (the seed's DSO role).
    pub may_hold: bool,
}

impl Principal {
    /// A principal with no special right.
    pub fn user(name: impl Into<String>) -> Self {
        Self { name: name.into(), may_unlock_administrative: false, may_hold: false }
    }

    /// A principal with every right (still bound by Compliance locks, which nobody can lift).
    pub fn admin(name: impl Into<String>) -> Self {
        Self { name: name.into(), may_unlock_administrative: true, may_hold: true }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
