//! Compile-time behaviour of the attributes: every invalid use is an error spanned at the
//! offending tokens (`ui/fail`, with checked-in `.stderr`), and every supported signature
//! shape compiles and runs (`ui/pass`). Regenerate with `TRYBUILD=overwrite`.

#[test]
fn attribute_errors_and_signature_shapes() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/fail/*.rs");
    cases.pass("ui/pass/*.rs");
}
