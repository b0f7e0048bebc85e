//! The `sesame` command.
#![forbid(unsafe_code)]

fn main() {
    println!("sesame: the server arrives with the next milestone");
}
