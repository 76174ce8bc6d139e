# Deploy: package the app for the Lambda runtime, then our own Terraform
# (terraform/) applies it. terraform/README.md walks through a first deploy.
#   make package STAGE=dev        build/<stage>/deployment.zip + manifest.json, built
#                                 for RUNTIME/ARCH (python3.13, x86_64) whatever
#                                 Python runs make
#   make plan|deploy|destroy      against AWS with the ambient credentials, after a
#                                 preflight (credentials, API Gateway logging role);
#                                 state is local (terraform/terraform.tfstate.d/<stage>/),
#                                 one workspace per stage (S3 backend: terraform/README.md)
#   make deploy-local             the same root module applied to AWS_ENDPOINT_URL, or
#                                 an embedded moto on 127.0.0.1:4566 (HOLD=1 keeps it)
#   make run-deployed             serve what deploy-local applied (needs that emulator)
#   make speaker-user|speaker-token EMAIL=...   speakers of the stack's user pool
#                                 (LOCAL=1: the deploy-local stack)
# AUTO_APPROVE=1 skips terraform's confirmation of deploy/destroy.

.PHONY: package wheelhouse preflight plan deploy destroy deploy-local run-deployed \
        speaker-user speaker-token tf-check tf-init

STAGE     ?= dev
# The Lambda runtime and architecture: the package is built for them and the
# Terraform variables lambda_runtime/lambda_architecture get the same values
# (the plan refuses a package built for anything else).
RUNTIME   ?= python3.13
ARCH      ?= x86_64
TERRAFORM ?= terraform
TF_ROOT   := terraform
TF        := $(TERRAFORM) -chdir=$(TF_ROOT)
BUILD_DIR := $(abspath build/$(STAGE))
MANIFEST  := $(BUILD_DIR)/manifest.json
OUTPUTS   := $(BUILD_DIR)/outputs.json
TF_VARFILE := $(wildcard $(TF_ROOT)/environments/$(STAGE).tfvars)
# Command-line variables: the stage's tfvars file comes last, so it wins.
TF_VARS    = -var 'stage=$(STAGE)' -var 'aws_region=$(AWS_DEFAULT_REGION)' \
             -var 'manifest_path=$(MANIFEST)' \
             -var 'lambda_runtime=$(RUNTIME)' -var 'lambda_architecture=$(ARCH)' \
             $(if $(TF_VARFILE),-var-file=$(abspath $(TF_VARFILE)))
TF_APPROVE = $(if $(filter 1 yes true,$(AUTO_APPROVE)),-auto-approve)
WHEELHOUSE       := build/wheelhouse/$(RUNTIME)-$(ARCH)
WHEELHOUSE_STAMP := $(WHEELHOUSE)/.complete

# deploy-local keeps its own copy of terraform/, provider dir and state, never the AWS ones.
LOCAL_DIR   := $(abspath build/local/$(STAGE))
# Offline machines install hashicorp/aws from a filesystem mirror: TF_PLUGIN_DIR
# (default: /opt/tf-plugins when it exists, as on our CI machines).
TF_PLUGIN_DIR ?= $(firstword $(wildcard /opt/tf-plugins))
TF_INIT_ARGS = -input=false $(if $(TF_PLUGIN_DIR),-plugin-dir=$(TF_PLUGIN_DIR))
SPEAKER_OUTPUTS = $(if $(filter 1 yes true,$(LOCAL)),$(LOCAL_DIR)/outputs.json,$(OUTPUTS))

tf-check:
	@command -v $(TERRAFORM) >/dev/null 2>&1 || { \
	  echo "terraform not found: install Terraform >= 1.6 (https://developer.hashicorp.com/terraform/install)" >&2; exit 127; }

# The target's wheels, downloaded once per lock (make test fills it before the
# packaging tests, which never download).
$(WHEELHOUSE_STAMP): requirements.txt | $(STAMP)
	@$(PY) tools/package.py --download-only --runtime $(RUNTIME) --arch $(ARCH)
	@touch $@

wheelhouse: $(WHEELHOUSE_STAMP) ## Download the locked wheels for RUNTIME/ARCH into build/wheelhouse/

package: $(STAMP) ## Build build/STAGE/deployment.zip for RUNTIME (python3.13) and ARCH (x86_64), checked
	@$(PY) tools/package.py --stage $(STAGE) --runtime $(RUNTIME) --arch $(ARCH) --out-dir $(BUILD_DIR)

preflight: $(STAMP) ## Check AWS credentials and the region's API Gateway logging role (before plan/deploy)
	@$(PY) tools/preflight.py --stage $(STAGE) --region $(AWS_DEFAULT_REGION) $(if $(TF_VARFILE),--var-file $(TF_VARFILE))

tf-init: tf-check
	@$(TF) init $(TF_INIT_ARGS) >/dev/null
	@$(TF) workspace select -or-create $(STAGE) >/dev/null

# Order matters (make runs prerequisites left to right): nothing is built or
# initialised until the preflight passes.
plan: preflight package tf-init ## terraform plan of STAGE (default dev) against AWS
	$(TF) plan -input=false $(TF_VARS) -out=$(BUILD_DIR)/plan.tfplan

deploy: preflight package tf-init ## Preflight, package and terraform apply STAGE to AWS (prints the outputs)
	$(TF) apply -input=false $(TF_APPROVE) $(TF_VARS)
	@$(TF) output -json > $(OUTPUTS)
	@echo "outputs: $(OUTPUTS); next: make speaker-user EMAIL=you@example.com (terraform/README.md)"

destroy: preflight package tf-init ## terraform destroy STAGE in AWS (prod: turn deletion protection off first)
	$(TF) destroy -input=false $(TF_APPROVE) $(TF_VARS)

deploy-local: $(STAMP) tf-check ## Package, apply the stack to AWS_ENDPOINT_URL or an embedded moto (127.0.0.1:4566); HOLD=1 keeps it running
	@$(PY) tools/package.py --quiet --stage $(STAGE) --runtime $(RUNTIME) --arch $(ARCH) --out-dir $(BUILD_DIR)
	@$(PY) tools/deploy_local.py --stage $(STAGE) --manifest $(MANIFEST) --work-dir $(LOCAL_DIR) \
	  --terraform $(TERRAFORM) $(if $(TF_PLUGIN_DIR),--plugin-dir $(TF_PLUGIN_DIR)) \
	  $(if $(TF_VARFILE),--var-file $(TF_VARFILE)) \
	  --runtime $(RUNTIME) --arch $(ARCH) $(if $(filter 1 yes true,$(HOLD)),--hold)

run-deployed: $(STAMP) ## Serve the deploy-local stack on ws://127.0.0.1:8000/STAGE (run make deploy-local HOLD=1 first)
	@exec $(PY) -m local_stack run-deployed --outputs $(LOCAL_DIR)/outputs.json \
	  --package $(BUILD_DIR)/deployment.zip

speaker-user: $(STAMP) ## Create a speaker EMAIL=... in the stack's user pool (PASSWORD=..., else one is generated; LOCAL=1: deploy-local's)
	@test -n "$(EMAIL)" || { echo "usage: make speaker-user EMAIL=you@example.com [PASSWORD=...] [LOCAL=1]" >&2; exit 2; }
	@$(PY) tools/speakers.py --outputs $(SPEAKER_OUTPUTS) create $(EMAIL)

speaker-token: $(STAMP) ## Print an ID token of speaker EMAIL=... (PASSWORD=..., else asked; the token alone on the last line)
	@test -n "$(EMAIL)" || { echo "usage: make speaker-token EMAIL=you@example.com [PASSWORD=...] [LOCAL=1]" >&2; exit 2; }
	@$(PY) tools/speakers.py --outputs $(SPEAKER_OUTPUTS) token $(EMAIL)
