//! doorsim: an emulator of an Axis network door station.
//!
//! Layers, imports pointing down only (see DESIGN.md):
//! - [`http`] serves the HTTP faces ([`vapix`], [`control`]) with auth and body limits;
//! - [`vapix`] decodes both request formats and runs the Call service commands;
//! - [`store`] holds the device state and its invariants;
//! - [`model`] is the pure data model with its validation rules.
//!
//! [`device::Device`] is the composition root that wires one device together.

pub mod actions;
pub mod auth;
pub mod calls;
pub mod capture;
pub mod cli;
pub mod control;
pub mod device;
pub mod dtmf;
pub mod events;
pub mod facades;
pub mod fleet;
pub mod http;
pub mod io;
pub mod listener;
pub mod load;
pub mod media;
pub mod metrics;
pub mod model;
pub mod persist;
pub mod profile;
pub mod quoted;
pub mod reply;
pub mod request_target;
pub mod rtp;
pub mod rtsp;
pub mod sip;
pub mod store;
pub mod vapix;
pub mod video;
pub mod web;
pub mod xml;
