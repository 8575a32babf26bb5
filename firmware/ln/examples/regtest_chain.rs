//! A regtest chain for the local sandbox: starts Bitcoin Knots on a free
//! loopback port, mines 101 blocks, prints the `[chain]` settings a box's
//! config needs, then takes commands on stdin until `quit` or end of input:
//!
//! ```text
//! mine N            mine N blocks
//! fund ADDRESS SAT  send SAT satoshi to ADDRESS and mine 6 blocks
//! height            print the block height
//! quit
//! ```
//!
//! Run: `cargo run -p bunker-ln --features regtest --example regtest_chain`

use std::io::BufRead;

use bunker_ln::regtest::Bitcoind;
use bunker_ln::ChainSource;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let chain = Bitcoind::start()?;
    chain.mine(101)?;
    if let ChainSource::BitcoindRpc {
        host,
        port,
        user,
        password,
    } = chain.chain_source()
    {
        // A throw-away regtest credential: printed so the sandbox can use it.
        println!("[chain]\nkind = \"bitcoind_rpc\"\nhost = \"{host}\"\nport = {port}\nuser = \"{user}\"\npassword = \"{password}\"");
    }
    eprintln!(
        "regtest chain at height {}; commands: mine N | fund ADDRESS SAT | height | quit",
        chain.height()?
    );
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let outcome = match words.as_slice() {
            ["mine", n] => n.parse::<u64>().map_err(|e| e.to_string()).and_then(|n| {
                if n > 10_000 {
                    return Err("at most 10000 blocks at a time".into());
                }
                chain.mine(n).map(|h| format!("height {h}")).map_err(|e| e.to_string())
            }),
            ["fund", address, sat] => sat.parse::<u64>().map_err(|e| e.to_string()).and_then(|sat| {
                chain
                    .fund(address, sat)
                    .map(|txid| format!("txid {txid}"))
                    .map_err(|e| e.to_string())
            }),
            ["height"] => chain.height().map(|h| format!("height {h}")).map_err(|e| e.to_string()),
            ["quit"] => break,
            [] => continue,
            _ => Err(format!("unknown command {line:?}")),
        };
        match outcome {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(())
}
