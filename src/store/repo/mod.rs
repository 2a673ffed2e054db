//! The repository traits of the store port, one file each with the values it stores;
//! re-exported from [`crate::store`], which composes them into [`crate::store::Store`].

pub mod audit;
pub mod client;
pub mod fido;
pub mod grant;
pub mod incident;
pub mod legal;
pub mod lifecycle;
pub mod means;
pub mod notice;
pub mod operator_token;
pub mod person;
pub mod provider_state;
pub mod smartcard;
