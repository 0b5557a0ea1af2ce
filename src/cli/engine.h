#pragma once

namespace ferry::cli {

// `ferry engine`: runs deployments of `ferry serve` replicas behind a gateway.
int Engine(int argc, char** argv);

}  // namespace ferry::cli
