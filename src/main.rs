fn main() -> std::process::ExitCode {
    system_agent::cli::main()
}
