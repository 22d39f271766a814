//! The application's function symbols, for the one line a fatal signal reports ("main+0x14").
//! Read lazily, once, from the executable opened at load time: never re-opened by path (the
//! application may have replaced the file), never read past the length it had then.
use super::place::{ExeImage, ImageMap};
use std::sync::OnceLock;

/// The symbols of one loaded executable.
pub struct Symbols {
    image: ExeImage,
    /// What the loader added to the executable's addresses.
    bias: u64,
    /// (address, size, name), sorted by address; read the first time they are needed.
    table: OnceLock<Vec<(u64, u64, String)>>,
    /// (st_dev, st_ino) of the executable file, as opened at load time.
    file_id: Option<(u64, u64)>,
    /// The executable and its interpreter as Linux maps them (for `/proc/self/maps`).
    images: Vec<ImageMap>,
}

impl Symbols {
    /// The symbols of `image`, loaded `bias` bytes above its link addresses.
    pub fn new(image: ExeImage, bias: u64) -> Symbols {
        Symbols {
            file_id: image.file_id(),
            image,
            bias,
            table: OnceLock::new(),
            images: Vec::new(),
        }
    }

    /// These symbols with the images' maps (the executable's first).
    pub fn with_images(mut self, images: Vec<ImageMap>) -> Symbols {
        self.images = images;
        self
    }

    /// The executable and its interpreter as Linux maps them (the executable's first).
    pub fn images(&self) -> &[ImageMap] {
        &self.images
    }

    /// (st_dev, st_ino) of the running executable (None when it was not loaded from a file):
    /// the inode Linux refuses to open for writing (ETXTBSY) while it runs.
    pub fn file_id(&self) -> Option<(u64, u64)> {
        self.file_id
    }

    /// " (name+0xoff)" for an address inside a known function, else "".
    pub fn describe(&self, addr: u64) -> String {
        let table = self.table.get_or_init(|| self.image.symbols(self.bias));
        let i = table.partition_point(|s| s.0 <= addr);
        match i.checked_sub(1).map(|i| &table[i]) {
            // Sizes come from the file: a hostile one (~0) must not overflow.
            Some((start, size, name)) if addr - start < (*size).max(1) => {
                format!(" ({name}+{:#x})", addr - start)
            }
            _ => String::new(),
        }
    }
}
