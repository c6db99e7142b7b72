//! Typed view over the AMI events the tracker needs; everything else is `Other`.
