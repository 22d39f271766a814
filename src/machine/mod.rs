//! The machine: KVM, guest RAM and its memory slots, page tables, the guest core, the vCPU
//! and its run loop, the core's hypercalls, stopping a running VM, and the monitor's own
//! confinement (seccomp). It knows nothing of Linux or of the application's image: the run
//! loop hands everything that concerns the application to a [`vcpu::ExitHandler`] the layer
//! above implements. It imports only [`crate::exit`].
pub mod core;
#[allow(unsafe_code)] // pthread_self/pthread_kill, the SIGSYS reporter
pub(crate) mod host;
pub mod hypercall;
pub mod kvm;
pub mod memory;
pub mod memslots;
pub mod paging;
pub mod seccomp;
pub mod stop;
pub mod vcpu;
