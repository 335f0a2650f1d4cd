//! Hostile: a well-formed component exporting an interface Weir does not know.

wit_bindgen::generate!({ path: "wit", world: "elsewhere" });

struct Elsewhere;

impl exports::test::elsewhere::counter::Guest for Elsewhere {
    fn next() -> u32 {
        42
    }
}

export!(Elsewhere);
